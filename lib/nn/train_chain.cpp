#include "morphokd/nn/train_chain.hpp"

#include <algorithm>

#include "morphokd/error.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/parallel.hpp"
#include "chain_taps.hpp"

namespace morphokd::nn {

std::unique_ptr<TrainChain> TrainChain::compile(Sequential& net) {
  std::vector<ops::TrainBlock> blocks;
  std::vector<std::size_t> block_of(net.size(), detail::kNoOutput);
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (dynamic_cast<MaxPool2d*>(&net.at(i))) {
      blocks.push_back({});
      block_of[i] = blocks.size() - 1;
      continue;
    }
    auto* conv = dynamic_cast<Conv2d*>(&net.at(i));
    if (!conv) return nullptr;
    ops::TrainBlock block;
    block.weight = &conv->weight.value;
    block.weight_grad = &conv->weight.grad;
    if (conv->has_bias()) {
      block.bias = &conv->bias.value;
      block.bias_grad = &conv->bias.grad;
    }
    if (auto* bn = i + 1 < net.size() ? dynamic_cast<BatchNorm2d*>(&net.at(i + 1)) : nullptr) {
      block.gamma = &bn->weight.value;
      block.beta = &bn->bias.value;
      block.eps = bn->eps;
      block.batch_mean = &bn->batch_mean();
      block.batch_var = &bn->batch_var();
      block.gamma_grad = &bn->weight.grad;
      block.beta_grad = &bn->bias.grad;
      ++i;
    }
    if (i + 1 >= net.size() || !dynamic_cast<ReLU*>(&net.at(i + 1))) return nullptr;
    blocks.push_back(block);
    block_of[++i] = blocks.size() - 1;  // the ReLU's output is the block's
  }
  if (blocks.empty()) return nullptr;
  return std::unique_ptr<TrainChain>(new TrainChain(net, std::move(blocks), std::move(block_of)));
}

bool TrainChain::preferred(Index batch) const {
  if (!ops::TrainingChain::blocked() || !net_.training() || batch_images(batch) != batch) return false;
  for (std::size_t i = 0; i < net_.size(); ++i) {  // what the chain does not compute
    if (auto* relu = dynamic_cast<const ReLU*>(&net_.at(i)); relu && relu->guided()) return false;
    if (auto* conv = dynamic_cast<const Conv2d*>(&net_.at(i)); conv && conv->algorithm != ops::ConvAlgorithm::direct) return false;
  }
  return true;
}

bool TrainChain::takes_gray(const Tensor& x) const {
  return x.rank() == 4 && x.dim(1) == 1 && !blocks_[0].is_pool() && blocks_[0].weight->dim(1) > 1;
}

void TrainChain::forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out) {
  check(net_.training(), "TrainChain: the network is in eval mode");
  detail::chain_taps(taps, block_of_, "TrainChain", "inside a conv block", tap_blocks_);
  const bool gray = takes_gray(x);
  Shape modules_in = x.shape();
  if (gray) {  // this step's weights
    sum_input_channels(*blocks_[0].weight, gray_weight_);
    modules_in = {x.dim(0), blocks_[0].weight->dim(1), x.dim(2), x.dim(3)};
  }
  if (gray != gray_) {  // a chain over the other first weights (its plan made at its first forward)
    std::vector<ops::TrainBlock> blocks = blocks_;
    if (gray) {
      fit_shape(gray_grad_, gray_weight_.shape());
      blocks[0].weight = &gray_weight_;
      blocks[0].weight_grad = &gray_grad_;
    }
    chain_ = ops::TrainingChain(std::move(blocks));
    gray_ = gray;
  }
  chain_.forward(x, tap_blocks_, out);
  for (std::size_t i = 0; i < net_.size(); ++i)
    if (auto* bn = dynamic_cast<BatchNorm2d*>(&net_.at(i))) bn->track_batch(net_.output_shape(modules_in, i));
}

void TrainChain::backward(std::span<const Tensor> grads) {
  chain_.backward(grads);
  if (!gray_) return;
  Tensor& dw = *blocks_[0].weight_grad;  // d/dw[o, c] = d/dw_gray[o] for every copy c
  const Index co = dw.dim(0), ci = dw.dim(1), k = dw.dim(2) * dw.dim(3);
  for (Index o = 0; o < co; ++o)
    for (Index c = 0; c < ci; ++c) std::copy_n(gray_grad_.data() + o * k, k, dw.data() + (o * ci + c) * k);
}

}  // namespace morphokd::nn
