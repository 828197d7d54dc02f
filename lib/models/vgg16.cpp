#include "morphokd/models/vgg16.hpp"

#include "morphokd/io/safetensors.hpp"
#include "morphokd/nn/layers.hpp"

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

}  // namespace morphokd::models
