// VGG-style feature extractors from a width list, as torchvision's and MKD's make_layers:
// each number a 3x3 conv (+ BatchNorm when `batch_norm` and the next entry is not a pool)
// + ReLU, kPool a 2x2 max-pool. Module indices match PyTorch's, so state_dict names do.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "morphokd/nn/module.hpp"

namespace morphokd::models {

constexpr int kPool = 0;

struct VggSpec {
  std::vector<int> cfg;  // widths, kPool for a max-pool
  bool bias = true;      // conv bias
  bool batch_norm = false;
};

std::unique_ptr<nn::Sequential> vgg_features(const VggSpec& spec, int in_channels = 3);
// Module index of the k-th max-pool (k = 1..5 for VGG16-shaped nets).
std::size_t pool_index(const VggSpec& spec, int k);

// Xavier-uniform conv weights (bound sqrt(6 / (9 Cin + 9 Cout))), zero conv biases; BN
// layers keep weight 1, bias 0. Value i of the conv at module index k comes from the
// counter-based stream (seed * 64 + k, i): identical on every machine and thread count.
void init_xavier(nn::Sequential& net, std::uint64_t seed);

}  // namespace morphokd::models
