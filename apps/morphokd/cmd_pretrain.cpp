// `morphokd pretrain-teacher`: a VGG16 teacher made offline (see pipeline/pretrain.hpp).
#include <iostream>

#include "commands.hpp"
#include "morphokd/error.hpp"
#include "morphokd/pipeline/pretrain.hpp"

namespace morphokd::cli {

Action add_pretrain_command(CLI::App& app) {
  auto c = std::make_shared<pipeline::PretrainConfig>();
  auto out = std::make_shared<std::string>();
  auto resume = std::make_shared<bool>(false);
  auto stop_after = std::make_shared<int>(0);
  CLI::App* cmd = app.add_subcommand("pretrain-teacher", "Pretrain a VGG16 teacher offline; export it with BatchNorm folded");
  cmd->add_option("--dataset", c->dataset, "cells-ssl (rotation prediction on unlabelled MHSMA train+valid) or fashion-mnist")->capture_default_str();
  cmd->add_option("--data", c->data_dir, "Data folder (default: data/mhsma, or /usr/share/datasets/fashion-mnist)");
  cmd->add_option("--init", c->init, "Continue from this VGG16 (safetensors, .onnx or random:SEED); default: Kaiming init of --seed");
  cmd->add_option("--input-norm", c->input_norm, "Input pipeline, as for train")->capture_default_str();
  cmd->add_option("--epochs", c->epochs, "Epochs")->capture_default_str();
  cmd->add_option("--batch", c->batch, "Batch size")->capture_default_str();
  cmd->add_option("--lr", c->lr, "Peak SGD learning rate (cosine schedule)")->capture_default_str();
  cmd->add_option("--momentum", c->momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--weight-decay", c->weight_decay, "L2 weight decay")->capture_default_str();
  cmd->add_option("--seed", c->seed, "Seed of init, order and pretext draws")->capture_default_str();
  cmd->add_option("--limit", c->limit, "Use only the first N images (0: all)")->capture_default_str();
  cmd->add_flag("--resume", *resume, "Continue from OUT.checkpoint.safetensors with its configuration");
  cmd->add_option("--stop-after", *stop_after, "Stop once this many epochs are done, keeping the checkpoint (0: run to the end)");
  cmd->add_option("--out", *out, "Teacher safetensors to write")->required();
  return [c, out, resume, stop_after, cmd] {
    if (*resume)
      for (const CLI::Option* opt : cmd->get_options())
        if (opt->count() > 0 && opt->get_name() != "--resume" && opt->get_name() != "--out" && opt->get_name() != "--stop-after")
          fail(opt->get_name() + ": --resume takes the configuration from the checkpoint");
    if (*stop_after < 0) fail("--stop-after must be >= 0");
    pipeline::pretrain_teacher(*c, *out, *resume, *stop_after);
  };
}

}  // namespace morphokd::cli
