// `morphokd forward`: the audit command. Runs VGG16 features on an input array and dumps
// every module's output, so each intermediate tensor can be compared with an independent
// computation. The dump directory appears complete or not at all: it is written under a
// temporary name and renamed into place at the end.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "commands.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/npy.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/ops/ops.hpp"
#include "morphokd/runtime.hpp"

namespace morphokd::cli {

namespace fs = std::filesystem;

namespace {

struct ForwardArgs {
  std::string model = "vgg16", weights, input, dump;
  Index limit = 0;
};

// N x 3 x H x W float as stored, or MHSMA-layout grayscale cells N x H x W (uint8 0-255
// scaled by 1/255, float taken as 0-1) replicated to 3 channels. At most `limit` images.
Tensor read_images(const std::string& path, Index limit) {
  NpyDType stored{};
  Tensor x = read_npy(path, &stored);
  if (x.rank() == 3) {
    const Index n = x.dim(0), hw = x.dim(1) * x.dim(2);
    const float scale = stored == NpyDType::u8 ? 1.0f / 255.0f : 1.0f;
    Tensor rgb = Tensor::empty({n, 3, x.dim(1), x.dim(2)});
    for (Index i = 0; i < n; ++i)
      for (Index c = 0; c < 3; ++c)
        for (Index j = 0; j < hw; ++j) rgb.data()[(i * 3 + c) * hw + j] = x.data()[i * hw + j] * scale;
    x = rgb;
  } else if (stored != NpyDType::f32) {
    std::cerr << "morphokd: note: " << path << ": " << npy_dtype_name(stored) << " converted to float32\n";
  }
  if (x.rank() != 4 || x.dim(1) != 3)
    fail(path + ": expected an N x 3 x H x W array or N x H x W gray cells, got shape " + x.shape().str());
  if (x.dim(0) < 1) fail(path + ": empty batch (N = 0)");
  if (x.dim(2) < 32 || x.dim(3) < 32)
    fail(path + ": VGG16's five 2x2 pools need H, W >= 32, got shape " + x.shape().str());
  if (const Index bad = find_non_finite(x.span()); bad >= 0)
    fail(path + ": non-finite value (NaN or Inf) at flat index " + std::to_string(bad));
  return limit > 0 && limit < x.dim(0) ? x.slice(0, limit) : x;
}

void run_forward(const ForwardArgs& a) {
  if (a.model != "vgg16") fail("--model: unknown model '" + a.model + "' (supported: vgg16)");
  if (fs::exists(a.dump)) fail(a.dump + ": already exists; choose a new dump directory");
  const Tensor x = read_images(a.input, a.limit);
  auto net = models::open_vgg16_teacher(a.weights);
  StagedDirectory tmp(a.dump);

  net->forward(x);
  for (std::size_t i = 0; i < net->size(); ++i)
    write_npy((tmp.path() / ("features." + std::to_string(i) + ".npy")).string(), net->output(i));
  // Which oneDNN kernel computed each op, for the auditor.
  std::string kernels = "backend " + std::string(backend_name(current_backend())) + ", threads " +
                        std::to_string(num_threads()) + "\n" + build_info() + "\n";
  for (const std::string& k : ops::onednn_kernels_used()) kernels += k + "\n";
  const std::string kpath = (tmp.path() / "kernels.txt").string();
  write_file_atomic(kpath, std::as_bytes(std::span<const char>(kernels.data(), kernels.size())));

  tmp.commit();
  std::cout << "wrote " << net->size() << " layer outputs to " << a.dump << '\n';
}

}  // namespace

Action add_forward_command(CLI::App& app) {
  auto args = std::make_shared<ForwardArgs>();
  CLI::App* cmd = app.add_subcommand("forward", "Run VGG16 features and dump every layer's output (audit)");
  cmd->add_option("--model", args->model, "Network (vgg16)")->capture_default_str();
  cmd->add_option("--weights", args->weights,
                  "Teacher: a .safetensors with features.{i}.weight/bias (torchvision names; other tensors ignored) "
                  "or random:SEED (Xavier-uniform, zero biases)")->required();
  cmd->add_option("--input", args->input,
                  ".npy: N x 3 x H x W float32, or N x H x W gray cells (uint8 0-255 is divided by 255; float taken "
                  "as 0-1) replicated to 3 channels; H, W >= 32")->required();
  cmd->add_option("--limit", args->limit, "Only the first N images (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--dump", args->dump, "New directory for features.{i}.npy, i = 0..30")->required();
  return [args] { run_forward(*args); };
}

}  // namespace morphokd::cli
