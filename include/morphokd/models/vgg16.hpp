// VGG16's convolutional part, exactly torchvision's vgg16().features (indices 0..30):
// 13 conv 3x3 (with bias) + ReLU, max-pool 2x2 after each of the 5 blocks.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "morphokd/models/vgg.hpp"
#include "morphokd/nn/module.hpp"

namespace morphokd::models {

constexpr int kVgg16Modules = 31;
constexpr std::array<int, 13> kVgg16ConvIndices{0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28};
constexpr std::array<int, 5> kVgg16PoolIndices{4, 9, 16, 23, 30};

// torchvision's VGG16 features as a VggSpec (bias, no BatchNorm).
const VggSpec& vgg16_spec();
// Parameters zero-initialised; names "features.{i}.weight" / ".bias".
std::unique_ptr<nn::Sequential> vgg16_features(int in_channels = 3);

// Loads features.{i}.weight/bias from a safetensors file (torchvision names); other
// tensors in the file (classifier.*) are ignored. Errors name the file.
std::unique_ptr<nn::Sequential> load_vgg16_features(const std::string& path);

// A teacher spec: "random:SEED[:INIT]" (init_weights, xavier by default as the MKD reference's untrained VGG) or a
// .safetensors path. Returns the network in eval mode.
std::unique_ptr<nn::Sequential> open_vgg16_teacher(const std::string& spec);

}  // namespace morphokd::models
