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
  // x must stay unchanged until backward.
  void forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out);
  // As net.backward({{taps[i], grads[i]}...}, true, nullptr) after that forward.
  void backward(std::span<const Tensor> grads);
  void release() { chain_.release(); }  // its memory, until the next forward

 private:
  TrainChain(Sequential& net, ops::TrainingChain chain, std::vector<std::size_t> block_of)
      : net_(net), chain_(std::move(chain)), block_of_(std::move(block_of)) {}
  Sequential& net_;
  ops::TrainingChain chain_;
  std::vector<std::size_t> block_of_;  // module index -> block, or none (inside a block)
  std::vector<std::size_t> blocks_;    // taps as blocks (scratch)
};

}  // namespace morphokd::nn
