// Test-time helper for the CLI tests (no PyTorch needed):
//   cli_fixtures make DIR             deterministic VGG16 weights, inputs, and broken variants
//   cli_fixtures compare A B TOL      two dump directories agree: max|a-b|/max|a| <= TOL per file
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "morphokd/io/file.hpp"
#include "morphokd/io/npy.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/random.hpp"

using namespace morphokd;
namespace fs = std::filesystem;

namespace {
void make(const fs::path& dir) {
  fs::create_directories(dir);
  auto net = models::vgg16_features();
  for (auto& [name, p] : net->named_parameters())
    for (Index i = 0; i < p->value.numel(); ++i)
      p->value.data()[i] = static_cast<float>((2 * uniform01(name.size() * 31 + p->value.numel(), i) - 1) * 0.05);
  SafetensorsFile sd = net->state_dict();
  sd.tensors["classifier.0.bias"] = {StDType::f32, Tensor::zeros({4}), {}, {4}};  // ignored by forward
  write_safetensors((dir / "vgg16.safetensors").string(), sd);

  const auto bytes = encode_safetensors(sd);
  write_file_atomic((dir / "truncated.safetensors").string(), std::span(bytes).first(bytes.size() - 100));
  SafetensorsFile missing = sd;
  missing.tensors.erase("features.28.bias");
  write_safetensors((dir / "missing.safetensors").string(), missing);
  SafetensorsFile wrong = sd;
  wrong.tensors["features.2.weight"] = {StDType::f32, Tensor::zeros({64, 64, 1, 1}), {}, {64, 64, 1, 1}};
  write_safetensors((dir / "wrongshape.safetensors").string(), wrong);

  Tensor x = Tensor::empty({2, 3, 32, 40});
  for (Index i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(uniform01(5, i));
  write_npy((dir / "x.npy").string(), x);
  x.data()[17] = NAN;
  write_npy((dir / "nan.npy").string(), x);
  write_npy((dir / "rank2.npy").string(), Tensor::zeros({32, 32}));
  // MHSMA layout: uint8 gray cells N x 64 x 64.
  std::string hdr = "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 64, 64), }";
  hdr.append(117 - hdr.size(), ' ');
  hdr += '\n';
  std::string cells = std::string("\x93NUMPY\x01\x00", 8) + char(hdr.size()) + char(0) + hdr;
  for (int i = 0; i < 4 * 64 * 64; ++i) cells += char((i * 37) % 256);
  write_file_atomic((dir / "cells_u8.npy").string(), std::as_bytes(std::span(cells.data(), cells.size())));
  Tensor rgb = Tensor::empty({3, 3, 64, 64});
  for (Index n = 0; n < 3; ++n)
    for (Index c = 0; c < 3; ++c)
      for (Index j = 0; j < 64 * 64; ++j)
        rgb.data()[(n * 3 + c) * 4096 + j] = static_cast<float>(((n * 4096 + j) * 37) % 256) * (1.0f / 255.0f);
  write_npy((dir / "cells_rgb.npy").string(), rgb);
  write_npy((dir / "small.npy").string(), Tensor::zeros({1, 3, 16, 16}));
  write_npy((dir / "gray.npy").string(), Tensor::zeros({1, 1, 32, 32}));
  const auto xb = encode_npy(Tensor::zeros({1, 3, 32, 32}));
  write_file_atomic((dir / "truncated.npy").string(), std::span(xb).first(xb.size() - 7));
}

int compare(const fs::path& a, const fs::path& b, double tol) {
  int files = 0;
  double worst = 0;
  for (const auto& e : fs::directory_iterator(a)) {
    if (e.path().extension() != ".npy") continue;
    const Tensor ta = read_npy(e.path().string());
    const Tensor tb = read_npy((b / e.path().filename()).string());
    if (!(ta.shape() == tb.shape())) {
      std::cerr << e.path().filename() << ": shapes differ\n";
      return 1;
    }
    double err = 0, scale = 0;
    for (Index i = 0; i < ta.numel(); ++i) {
      err = std::max(err, std::fabs(double(ta.data()[i]) - tb.data()[i]));
      scale = std::max(scale, std::fabs(double(ta.data()[i])));
    }
    worst = std::max(worst, scale > 0 ? err / scale : err);
    ++files;
  }
  std::cout << files << " files, worst rel " << worst << " (tol " << tol << ")\n";
  return files > 0 && worst <= tol ? 0 : 1;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 3 && std::strcmp(argv[1], "make") == 0) {
      make(argv[2]);
      return 0;
    }
    if (argc == 5 && std::strcmp(argv[1], "compare") == 0) return compare(argv[2], argv[3], std::stod(argv[4]));
  } catch (const std::exception& e) {
    std::cerr << "cli_fixtures: " << e.what() << '\n';
    return 1;
  }
  std::cerr << "usage: cli_fixtures make DIR | compare A B TOL\n";
  return 2;
}
