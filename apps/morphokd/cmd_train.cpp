// `morphokd train`: a student on the normal cells of one part (see pipeline/train.hpp).
#include <iostream>

#include "commands.hpp"
#include "morphokd/error.hpp"
#include "morphokd/method/distill.hpp"
#include "morphokd/pipeline/train.hpp"

namespace morphokd::cli {

namespace {
struct TrainArgs {
  pipeline::TrainConfig c;
  std::string out, train_critical = method::layers_string(c.train_layers), score_critical = method::layers_string(c.score_layers);
  bool no_shuffle = false, no_augment = false, resume = false;
};
}  // namespace

Action add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a student on the normal cells of one part");
  cmd->add_option("--part", a->c.part, "head, vacuole, acrosome or tail")->capture_default_str();
  cmd->add_option("--data", a->c.data_dir, "MHSMA folder (x_64_*.npy, y_*_*.npy)")->capture_default_str();
  cmd->add_option("--teacher", a->c.teacher, "random:SEED, W.safetensors or VGG16.onnx")->capture_default_str();
  cmd->add_option("--student", a->c.student, "A, B or C")->capture_default_str();
  auto* epochs = cmd->add_option("--epochs", a->c.epochs, "Epochs")->capture_default_str();
  cmd->add_option("--batch", a->c.batch, "Batch size")->capture_default_str();
  cmd->add_option("--lr", a->c.lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--lambda", a->c.lambda, "Weight of the value (MSE) term")->capture_default_str();
  cmd->add_option("--train-critical", a->train_critical, "Pools in the training loss")->capture_default_str();
  cmd->add_option("--score-critical", a->score_critical, "Pools in the anomaly score")->capture_default_str();
  cmd->add_option("--seed", a->c.seed, "Seed of student init, shuffling and augmentation")->capture_default_str();
  cmd->add_option("--augment", a->c.augment, "none, or a comma list of flip, hflip, vflip, rotate")->capture_default_str();
  cmd->add_option("--input-norm", a->c.input_norm, "[clahe+]none (x/255), dataset, image or imagenet standardisation")->capture_default_str();
  cmd->add_option("--score", a->c.score, "Score rule: sum (the paper) or layer-z (each layer standardised on normal valid cells)")->capture_default_str();
  cmd->add_option("--tta", a->c.tta, "Test-time augmentation of the score: none or flip (mean over 4 flips)")->capture_default_str();
  cmd->add_option("--checkpoint-every", a->c.checkpoint_every, "Epochs between checkpoints")->capture_default_str();
  cmd->add_option("--valid-every", a->c.valid_every, "Epochs between valid AUCs in the log, and after the last; 0: none")->capture_default_str();
  cmd->add_option("--cache-limit-gb", a->c.cache_limit_gb, "Memory for cached teacher targets")->capture_default_str();
  cmd->add_option("--student-init", a->c.student_init, "Start from these student weights (safetensors)");
  cmd->add_option("--steps", a->c.steps, "Stop after exactly K optimizer steps (audit replay)");
  cmd->add_option("--fgsm-eps", a->c.fgsm_eps, "Adversarial training: FGSM step (pixel units of [0, 1]); 0: off")->capture_default_str();
  cmd->add_option("--fgsm-mix", a->c.fgsm_mix, "both: each batch and its attacked copy; adv: attacked copy only")->capture_default_str();
  add_precision_option(cmd, a->c.precision,
                       "Teacher arithmetic (targets, scores; Winograd also FGSM and localization gradients): fp32, fp32-winograd (AVX-512) or bf16 (AVX512-BF16/AMX)");
  cmd->add_flag("--dump-grads", a->c.dump_grads, "Write RUN/grad_step{k}.safetensors for every step (audit)");
  cmd->add_flag("--no-shuffle", a->no_shuffle, "Batches in dataset order");
  cmd->add_flag("--no-augment", a->no_augment, "Same as --augment none");
  cmd->add_flag("--resume", a->resume, "Continue RUN from its checkpoint, with RUN/run.json's configuration");
  cmd->add_option("--out", a->out, "Run directory to create")->required();
  return [a, cmd, epochs] {
    pipeline::TrainConfig c = a->c;
    if (a->resume) {
      for (const CLI::Option* opt : cmd->get_options())
        if (opt->count() > 0 && opt->get_name() != "--resume" && opt->get_name() != "--out" && opt != epochs &&
            opt->get_name() != "--help")
          fail(opt->get_name() + ": --resume takes the configuration from RUN/run.json (only --epochs may change)");
      const int wanted = epochs->count() ? a->c.epochs : 0;
      c = pipeline::read_run_config(a->out);
      if (wanted) c.epochs = wanted;
    } else {
      c.train_layers = method::parse_layers(a->train_critical, "--train-critical");
      c.score_layers = method::parse_layers(a->score_critical, "--score-critical");
      c.shuffle = !a->no_shuffle;
      if (a->no_augment) c.augment = "none";
    }
    pipeline::train(c, a->out, a->resume);
  };
}

}  // namespace morphokd::cli
