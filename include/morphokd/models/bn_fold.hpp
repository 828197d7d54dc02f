// BatchNorm folding: a VGG-BN features net in eval mode computes, per conv + BN pair,
//   y = gamma * (W*x + b - mean) / sqrt(var + eps) + beta
// which is one conv with W' = W * s and b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps)
// per output channel. Pretrained teachers are exported this way as plain VGG nets
// (torchvision names of the net without BN), so every downstream path is unchanged.
#pragma once
#include <memory>

#include "morphokd/io/safetensors.hpp"
#include "morphokd/models/vgg.hpp"
#include "morphokd/nn/module.hpp"

namespace morphokd::models {

// The plain net (spec without BN, with conv biases) equal to `bn_net` in eval mode.
// `bn_net` must have been built by vgg_features(bn_spec, in_channels).
std::unique_ptr<nn::Sequential> fold_batch_norm(nn::Sequential& bn_net, const VggSpec& bn_spec, int in_channels);

// The reverse start: a plain VGG state dict (e.g. an exported teacher) loaded into a fresh
// VGG-BN net's convs, its BatchNorms left at identity, to continue pretraining elsewhere.
// Missing names or shapes that differ are an Error naming `source`.
void load_plain_into_bn(nn::Sequential& bn_net, const VggSpec& bn_spec, const SafetensorsFile& plain, const std::string& source);

}  // namespace morphokd::models
