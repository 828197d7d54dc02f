#include "morphokd/models/vgg16.hpp"

#include <cmath>

#include "morphokd/error.hpp"
#include "morphokd/io/safetensors.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/random.hpp"

namespace morphokd::models {

std::unique_ptr<nn::Sequential> vgg16_features(int in_channels) {
  constexpr int kPool = 0;
  constexpr int cfg[] = {64, 64, kPool, 128, 128, kPool, 256, 256, 256, kPool, 512, 512, 512, kPool, 512, 512, 512, kPool};
  auto net = std::make_unique<nn::Sequential>("features");
  Index channels = in_channels;
  for (int width : cfg) {
    if (width == kPool) {
      net->add(std::make_unique<nn::MaxPool2d>());
      continue;
    }
    net->add(std::make_unique<nn::Conv2d>(channels, width, /*bias=*/true));
    net->add(std::make_unique<nn::ReLU>());
    channels = width;
  }
  return net;
}

std::unique_ptr<nn::Sequential> load_vgg16_features(const std::string& path) {
  auto net = vgg16_features();
  net->load_state_dict(read_safetensors(path), path);
  net->eval();
  return net;
}

void init_vgg16_xavier(nn::Sequential& net, std::uint64_t seed) {
  for (int k : kVgg16ConvIndices) {
    auto& conv = dynamic_cast<nn::Conv2d&>(net.at(static_cast<std::size_t>(k)));
    Tensor& w = conv.weight.value;
    const double bound = std::sqrt(6.0 / (9.0 * static_cast<double>(w.dim(1) + w.dim(0))));
    for (Index i = 0; i < w.numel(); ++i)
      w.data()[i] = static_cast<float>((2 * uniform01(seed * 64 + static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(i)) - 1) * bound);
    conv.bias.value.fill(0.0f);
  }
}

std::unique_ptr<nn::Sequential> open_vgg16_teacher(const std::string& spec) {
  constexpr std::string_view kRandom = "random:";
  if (spec.rfind(kRandom, 0) == 0) {
    const std::string digits = spec.substr(kRandom.size());
    if (digits.empty() || digits.size() > 19 || digits.find_first_not_of("0123456789") != std::string::npos)
      fail("teacher spec '" + spec + "': expected random:SEED with SEED a non-negative integer");
    auto net = vgg16_features();
    init_vgg16_xavier(*net, std::stoull(digits));
    net->eval();
    return net;
  }
  return load_vgg16_features(spec);
}

}  // namespace morphokd::models
