#include "morphokd/models/vgg.hpp"

#include <cmath>

#include "morphokd/error.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/random.hpp"

namespace morphokd::models {

std::unique_ptr<nn::Sequential> vgg_features(const VggSpec& spec, int in_channels) {
  auto net = std::make_unique<nn::Sequential>("features");
  Index channels = in_channels;
  for (std::size_t i = 0; i < spec.cfg.size(); ++i) {
    const int width = spec.cfg[i];
    if (width == kPool) {
      net->add(std::make_unique<nn::MaxPool2d>());
      continue;
    }
    net->add(std::make_unique<nn::Conv2d>(channels, width, spec.bias));
    const bool next_is_pool = i + 1 < spec.cfg.size() && spec.cfg[i + 1] == kPool;
    if (spec.batch_norm && !next_is_pool) net->add(std::make_unique<nn::BatchNorm2d>(width));
    net->add(std::make_unique<nn::ReLU>());
    channels = width;
  }
  return net;
}

std::size_t pool_index(const VggSpec& spec, int k) {
  std::size_t index = 0;
  int pools = 0;
  for (std::size_t i = 0; i < spec.cfg.size(); ++i) {
    if (spec.cfg[i] == kPool) {
      if (++pools == k) return index;
      ++index;
      continue;
    }
    const bool next_is_pool = i + 1 < spec.cfg.size() && spec.cfg[i + 1] == kPool;
    index += (spec.batch_norm && !next_is_pool) ? 3 : 2;
  }
  fail("network has no pool " + std::to_string(k));
}

int pool_channels(const VggSpec& spec, int k) {
  int pools = 0, width = 0;
  for (int c : spec.cfg) {
    if (c != kPool) width = c;
    else if (++pools == k) return width;
  }
  fail("network has no pool " + std::to_string(k));
}

void init_weights(nn::Sequential& net, std::uint64_t seed, WeightInit init) {
  for (std::size_t k = 0; k < net.size(); ++k) {
    auto* conv = dynamic_cast<nn::Conv2d*>(&net.at(k));
    if (!conv) continue;
    Tensor& w = conv->weight.value;
    const double fan_in = 9.0 * static_cast<double>(w.dim(1)), fan_out = 9.0 * static_cast<double>(w.dim(0));
    const double bound = init == WeightInit::xavier    ? std::sqrt(6.0 / (fan_in + fan_out))
                         : init == WeightInit::kaiming ? std::sqrt(6.0 / fan_out)
                                                       : 1.0 / std::sqrt(fan_in);
    const std::uint64_t stream = seed * 64 + k;
    for (Index i = 0; i < w.numel(); ++i)
      w.data()[i] = static_cast<float>((2 * uniform01(stream, static_cast<std::uint64_t>(i)) - 1) * bound);
    if (!conv->has_bias()) continue;
    Tensor& b = conv->bias.value;
    for (Index i = 0; i < b.numel(); ++i)  // biases continue the weights' stream
      b.data()[i] = init == WeightInit::torch
                        ? static_cast<float>((2 * uniform01(stream, static_cast<std::uint64_t>(w.numel() + i)) - 1) * bound)
                        : 0.0f;
  }
}

WeightInit parse_weight_init(const std::string& name) {
  if (name == "xavier") return WeightInit::xavier;
  if (name == "kaiming") return WeightInit::kaiming;
  if (name == "torch") return WeightInit::torch;
  fail("unknown weight init " + quote(name) + " (expected xavier, kaiming or torch)");
}

}  // namespace morphokd::models
