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

#include "morphokd/ops/ops.hpp"
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

// Input gradients through a frozen stack of InferenceChain's stages (fp32; FGSM, localization):
// forward keeps what backward reads, backward takes gradients at tapped outputs down to the
// input's gradient, no weight gradients. The arithmetic and bits of the ops conv2d (with
// `algorithm`), relu and maxpool2x2 forward and backward in turn, as the modules run them, in
// either mode. Winograd takes at most kWinogradChunk images a pass (a padded chunk, as the ops).
//
// onednn: activations and gradients stay in the layouts oneDNN picks from stage to stage, the
// conv's ReLU a post-op, the weights reordered once (the network is frozen); only the input,
// the tapped outputs, their gradients and the input's gradient change layout. (The ops change
// layout around every conv and run ReLU and pooling on plain layouts: a quarter of FGSM's time
// with the Winograd teacher.) reference: the ops one after another.
class GradientChain {
 public:
  // As InferenceChain's: the stages' tensors outlive the chain, unchanged.
  explicit GradientChain(std::vector<ChainStage> stages, ConvAlgorithm algorithm = ConvAlgorithm::direct);
  ~GradientChain();
  GradientChain(GradientChain&&) noexcept;
  GradientChain& operator=(GradientChain&&) noexcept;

  ConvAlgorithm algorithm() const { return algorithm_; }
  // x [N, C, H, W]; out[i] becomes the output of stage taps[i] (taps strictly increasing).
  void forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out);
  // dx [N, C, H, W] (reshaped to fit) = the gradient of sum_i <grads[i], out[i]> with respect
  // to the last forward's x.
  void backward(std::span<const Tensor> grads, Tensor& dx);
  // Frees the plan and its buffers until the next forward.
  void release();

  struct Plan;  // per backend, mode and input shape

 private:
  std::vector<ChainStage> stages_;
  ConvAlgorithm algorithm_;
  std::unique_ptr<Plan> plan_;
};

// Training through a stack of blocks -- a 3x3 conv, BatchNorm with batch statistics where
// given, ReLU -- and 2x2 max-pools: forward and backward, planned once per input shape. It
// composes the registered ops conv2d, batchnorm_train, relu and maxpool2x2, and is checked
// against the modules that run them one by one (tests/unit/test_train_chain.cpp).
//
// blocked() (the onednn backend outside deterministic mode): per block a conv, and a BatchNorm
// with the ReLU fused (else the ReLU as the conv's post-op), pools oneDNN's; activations and
// gradients kept in the layouts oneDNN picks from block to block; only the input, the tapped
// outputs and their gradients, and the parameters and their gradients change layout. (The
// modules' NCHW buffers cost a layout change around every conv and oneDNN's plain-layout
// batch norm and pooling: student B's epoch runs 1.3x faster blocked.) It follows the thread
// count where oneDNN's batch-norm sums do, as the op does in that mode.
// Otherwise: the ops one after another, the modules' arithmetic and bits.
struct TrainBlock {
  // A pool: all null. A conv block: weight and weight_grad; bias with bias_grad or neither; the
  // batch norm's six tensors or none.
  const Tensor* weight = nullptr;  // [Co, Ci, 3, 3]
  const Tensor* bias = nullptr;    // [Co]
  Tensor* weight_grad = nullptr;   // written by backward (overwritten), the parameters' shapes
  Tensor* bias_grad = nullptr;
  const Tensor* gamma = nullptr;   // [Co]
  const Tensor* beta = nullptr;    // [Co]
  float eps = 1e-5f;
  Tensor* batch_mean = nullptr;  // [Co], written by forward: the batch's mean and biased variance
  Tensor* batch_var = nullptr;
  Tensor* gamma_grad = nullptr;
  Tensor* beta_grad = nullptr;
  bool is_pool() const { return weight == nullptr; }
  bool has_bn() const { return gamma != nullptr; }
};

class TrainingChain {
 public:
  // The blocks' tensors must outlive the chain; parameters may change between steps.
  explicit TrainingChain(std::vector<TrainBlock> blocks);
  ~TrainingChain();
  TrainingChain(TrainingChain&&) noexcept;
  TrainingChain& operator=(TrainingChain&&) noexcept;

  // Whether a plan made now keeps blocked layouts (see above).
  static bool blocked();
  std::size_t size() const { return blocks_.size(); }
  // x [N, C, H, W]; out[i] becomes the output of block taps[i] (taps strictly increasing).
  // x must stay unchanged until backward, which reads it.
  void forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out);
  // grads[i] = dL/d out[i] of the last forward: every block's parameter gradients up to the
  // last tap (the ones above keep theirs); no input gradient.
  void backward(std::span<const Tensor> grads);
  // Frees the plan and its buffers until the next forward. A plan for a new input shape
  // (an epoch's last batch) reuses the buffers instead.
  void release();

  struct Plan;  // per backend and input shape

 private:
  std::vector<TrainBlock> blocks_;
  std::vector<std::size_t> taps_;  // the last forward's
  std::vector<Tensor> arena_;      // the blocked plans' buffers, kept from plan to plan
  std::unique_ptr<Plan> plan_;     // declared after the arena: destroyed before it
};

}  // namespace morphokd::ops
