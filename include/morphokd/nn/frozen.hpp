// A frozen Sequential of Conv2d, ReLU and MaxPool2d modules (the teacher) as chains: forward-only
// inference through ops::InferenceChain, and input gradients (FGSM, localization) through
// ops::GradientChain; conv + ReLU fused, planned once per input shape, weights read once.
// Same outputs as Sequential::forward, and the same input gradients as Sequential::backward
// (plain ReLUs; guided backpropagation stays with the modules). In bf16 forward's outputs are
// the chain's bf16 ones (ops/chain.hpp), not Sequential::forward's.
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
  // forward's outputs kept for input_backward, in fp32 with the precision's convolutions
  // (direct under bf16, whose gradients the modules compute in fp32): the modules' bits.
  // Winograd: at most ops::kWinogradChunk images a pass.
  void forward_for_gradient(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out);
  // As net.backward({{taps[i], grads[i]}...}, false, &dx) after that forward.
  void input_backward(std::span<const Tensor> grads, Tensor& dx) { gradient_.backward(grads, dx); }
  Precision precision() const { return chain_.precision(); }
  void release() {  // their memory, until the next forward
    chain_.release();
    gradient_.release();
  }

 private:
  FrozenForward(ops::InferenceChain chain, ops::GradientChain gradient, std::vector<std::size_t> stage_of)
      : chain_(std::move(chain)), gradient_(std::move(gradient)), stage_of_(std::move(stage_of)) {}
  ops::InferenceChain chain_;
  ops::GradientChain gradient_;
  std::vector<std::size_t> stage_of_;  // module index -> chain stage, or none (fused)
  std::vector<std::size_t> stages_;    // taps as stages (scratch)
};

}  // namespace morphokd::nn
