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
// Channels of the k-th max-pool's output (its spatial size is the input's / 2^k), from the
// spec alone, without building the network.
int pool_channels(const VggSpec& spec, int k);

// Random conv weights, all uniform; BN layers keep weight 1, bias 0.
//   xavier   bound sqrt(6 / (9 Cin + 9 Cout)), zero biases (MKD's student and teacher init)
//   kaiming  bound sqrt(6 / (9 Cout)), zero biases (torchvision VGG's fan_out variance)
//   torch    bound 1 / sqrt(9 Cin) for weights and biases (PyTorch's Conv2d default)
// Value i of the conv at module index k comes from the counter-based stream (seed * 64 + k, i):
// identical on every machine and thread count. With zero biases a ReLU/max-pool net is
// positively homogeneous, so xavier and kaiming differ only in scale per layer.
enum class WeightInit { xavier, kaiming, torch };
void init_weights(nn::Sequential& net, std::uint64_t seed, WeightInit init = WeightInit::xavier);
WeightInit parse_weight_init(const std::string& name);

}  // namespace morphokd::models
