// Training forward and backward of a Sequential of blocks -- Conv2d (bias optional),
// BatchNorm2d where present, ReLU -- and MaxPool2d modules (students A, B and C) through
// ops::TrainingChain. Where the chain
// keeps oneDNN's blocked layouts (TrainingChain::blocked()), this replaces the modules' NCHW
// buffers and the layout changes around every conv; it reads and writes the modules' own
// parameters, gradients and batch-norm statistics, so the optimizer and checkpoints see no
// difference. Elsewhere the modules are as fast, and the caller keeps using them.
#pragma once
#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "morphokd/nn/module.hpp"
#include "morphokd/ops/chain.hpp"

namespace morphokd::nn {

class TrainChain {
 public:
  // Null when `net` holds other modules or another order. `net` must outlive the result.
  static std::unique_ptr<TrainChain> compile(Sequential& net);
  // Whether to train a batch of `batch` images through the chain now: it is blocked, the
  // network is in training mode with plain ReLUs (not guided) and direct convolutions, and
  // the batch is not split across processes.
  bool preferred(Index batch) const;
  // out[i] = what net.output(taps[i]) would hold after a training forward (taps: ReLU or
  // MaxPool2d modules, increasing); the batch norms' running statistics move as theirs do.
  // x must stay unchanged until backward. x may also be [N, 1, H, W] where the first conv
  // takes C > 1 channels: it stands for its C copies (a gray cell), and the chain convolves it
  // with the conv's weights summed over their input channels, a C-th of the first conv's work.
  // Exact in real arithmetic; in floats the sums run in another order.
  void forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out);
  // As net.backward({{taps[i], grads[i]}...}, true, nullptr) after that forward. After a gray
  // forward each input channel of the first conv gets the one weight gradient of the copies.
  void backward(std::span<const Tensor> grads);
  void release() { chain_.release(); }  // its memory, until the next forward

 private:
  TrainChain(Sequential& net, std::vector<ops::TrainBlock> blocks, std::vector<std::size_t> block_of)
      : net_(net), blocks_(std::move(blocks)), chain_(blocks_), block_of_(std::move(block_of)) {}
  bool takes_gray(const Tensor& x) const;
  Sequential& net_;
  std::vector<ops::TrainBlock> blocks_;  // the modules' tensors
  ops::TrainingChain chain_;             // over blocks_, or for gray input over the summed first weights
  bool gray_ = false;                    // which of the two chain_ is
  Tensor gray_weight_, gray_grad_;       // [Co, 1, 3, 3]: the first conv's, summed over its input channels
  std::vector<std::size_t> block_of_;    // module index -> block, or none (inside a block)
  std::vector<std::size_t> tap_blocks_;  // taps as blocks (scratch)
};

}  // namespace morphokd::nn
