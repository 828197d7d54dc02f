#include "morphokd/models/bn_fold.hpp"

#include <cmath>

#include "morphokd/error.hpp"
#include "morphokd/nn/layers.hpp"

namespace morphokd::models {

namespace {
// Module indices of each conv in the BN net and in the plain net, and whether a BN follows.
struct ConvSlot {
  std::size_t bn_net, plain;
  bool has_bn;
};
std::vector<ConvSlot> conv_slots(const VggSpec& bn_spec) {
  std::vector<ConvSlot> slots;
  std::size_t i = 0, j = 0;
  for (std::size_t k = 0; k < bn_spec.cfg.size(); ++k) {
    if (bn_spec.cfg[k] == kPool) {
      ++i, ++j;
      continue;
    }
    const bool has_bn = bn_spec.batch_norm && !(k + 1 < bn_spec.cfg.size() && bn_spec.cfg[k + 1] == kPool);
    slots.push_back({i, j, has_bn});
    i += has_bn ? 3 : 2;  // conv, [BN,] ReLU
    j += 2;
  }
  return slots;
}
}  // namespace

std::unique_ptr<nn::Sequential> fold_batch_norm(nn::Sequential& bn_net, const VggSpec& bn_spec, int in_channels) {
  auto plain = vgg_features(VggSpec{bn_spec.cfg, /*bias=*/true, /*batch_norm=*/false}, in_channels);
  for (const ConvSlot& slot : conv_slots(bn_spec)) {
    auto* conv = dynamic_cast<nn::Conv2d*>(&bn_net.at(slot.bn_net));
    auto* out = dynamic_cast<nn::Conv2d*>(&plain->at(slot.plain));
    auto* bn = slot.has_bn ? dynamic_cast<nn::BatchNorm2d*>(&bn_net.at(slot.bn_net + 1)) : nullptr;
    check(conv && out && (bn != nullptr) == slot.has_bn, "fold_batch_norm: the net does not match its spec");
    const Index co = conv->weight.value.dim(0), per = conv->weight.value.numel() / co;
    for (Index o = 0; o < co; ++o) {  // in double, rounded once
      const double b = conv->has_bias() ? conv->bias.value.data()[o] : 0.0;
      double scale = 1.0, shift = b;
      if (bn) {
        scale = bn->weight.value.data()[o] / std::sqrt(static_cast<double>(bn->running_var.data()[o]) + bn->eps);
        shift = (b - bn->running_mean.data()[o]) * scale + bn->bias.value.data()[o];
      }
      for (Index q = 0; q < per; ++q)
        out->weight.value.data()[o * per + q] = static_cast<float>(conv->weight.value.data()[o * per + q] * scale);
      out->bias.value.data()[o] = static_cast<float>(shift);
    }
  }
  plain->eval();
  return plain;
}

void load_plain_into_bn(nn::Sequential& bn_net, const VggSpec& bn_spec, const SafetensorsFile& plain, const std::string& source) {
  for (const ConvSlot& slot : conv_slots(bn_spec)) {
    auto* conv = dynamic_cast<nn::Conv2d*>(&bn_net.at(slot.bn_net));
    check(conv != nullptr, "load_plain_into_bn: the net does not match its spec");
    const std::string base = "features." + std::to_string(slot.plain) + ".";
    const Tensor& w = plain.tensor(base + "weight", source);
    if (!(w.shape() == conv->weight.value.shape()))
      fail(source + ": " + base + "weight is " + w.shape().str() + ", expected " + conv->weight.value.shape().str());
    conv->weight.value.copy_from(w);
    if (conv->has_bias()) conv->bias.value.copy_from(plain.tensor(base + "bias", source));
  }
}

}  // namespace morphokd::models
