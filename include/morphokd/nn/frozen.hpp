// Forward-only inference of a frozen Sequential of Conv2d, ReLU and MaxPool2d modules (the
// teacher) through ops::InferenceChain: conv + ReLU fused, planned once per input shape,
// weights read once. Same outputs as Sequential::forward; the modules keep serving the
// backward passes (FGSM, localization), which need their stored activations. In bf16 the
// outputs are the chain's bf16 ones (ops/chain.hpp), not Sequential::forward's.
#pragma once
#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "morphokd/nn/module.hpp"
#include "morphokd/ops/chain.hpp"

namespace morphokd::nn {

class FrozenForward {
 public:
  // Null when `net` holds other modules (BatchNorm, Linear, ...). `net` must outlive the
  // result and its parameters must not change.
  static std::unique_ptr<FrozenForward> compile(Sequential& net, Precision precision = Precision::fp32);
  // out[i] = output(taps[i]) of `net`'s forward of x; a tapped Conv2d must not be followed
  // by a ReLU (that output is fused away).
  void forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out);
  Precision precision() const { return chain_.precision(); }
  void release() { chain_.release(); }  // its memory, until the next forward

 private:
  FrozenForward(ops::InferenceChain chain, std::vector<std::size_t> stage_of)
      : chain_(std::move(chain)), stage_of_(std::move(stage_of)) {}
  ops::InferenceChain chain_;
  std::vector<std::size_t> stage_of_;  // module index -> chain stage, or none (fused)
  std::vector<std::size_t> stages_;    // taps as stages (scratch)
};

}  // namespace morphokd::nn
