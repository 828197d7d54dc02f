// Frozen inference through a VGG-style stack: 3x3 convolutions (ReLU fused) and 2x2
// max-pools, planned once per input shape. It composes the registered ops conv2d, relu
// and maxpool2x2 (tested op by op in the harness) and is checked against them as a whole.
//
// onednn: each stage one primitive, the conv on the kernel the module path runs (so the bits
// are the same) with ReLU as a post-op; activations stay
// in the layouts oneDNN picks between stages, two ping-pong buffers hold them, weights are
// reordered once when the chain is planned; only the input and the tapped outputs are
// reordered. reference: the ops one after another.
//
// bf16: the input, the weights and each stage's output rounded to bfloat16 (nearest even),
// products summed in fp32 with the fp32 bias. onednn runs bf16 primitives (forward_inference,
// no module path to match) and needs bf16 hardware; reference rounds the fp32 ops' results
// the same way, the readable statement of what the fast path computes.
//
// fp32-winograd: onednn runs the Winograd kernels of conv2d with ConvAlgorithm::winograd (the
// same bits; AVX-512 only), which approximate the direct convolution to ~1e-5, in chunks of 64
// images (an image's bits do not depend on its batch or, below 64, on the thread count);
// reference computes the direct convolution, the statement of what they approximate.
#pragma once
#include <memory>
#include <span>
#include <vector>

#include "morphokd/runtime.hpp"
#include "morphokd/tensor.hpp"

namespace morphokd::ops {

struct ChainStage {
  const Tensor* weight = nullptr;  // conv3x3 [Co, Ci, 3, 3]; null: maxpool2x2
  const Tensor* bias = nullptr;    // [Co] or null
  bool relu = false;               // the conv's output goes through ReLU
};

class InferenceChain {
 public:
  // The stages' tensors must outlive the chain and stay unchanged (a frozen network): the
  // onednn plan reads them once.
  explicit InferenceChain(std::vector<ChainStage> stages, Precision precision = Precision::fp32);
  ~InferenceChain();
  InferenceChain(InferenceChain&&) noexcept;
  InferenceChain& operator=(InferenceChain&&) noexcept;

  std::size_t size() const { return stages_.size(); }
  Precision precision() const { return precision_; }
  // x [N, C, H, W]; out[i] becomes the output of stage taps[i] (taps strictly increasing).
  void forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out);
  // Frees the plan (buffers, primitives, reordered weights) until the next forward.
  void release();

  struct Plan;  // per backend and input shape

 private:
  void plan(const Shape& in);
  void forward_in_chunks(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out);
  std::vector<ChainStage> stages_;
  Precision precision_;
  std::unique_ptr<Plan> plan_;
};

}  // namespace morphokd::ops
