#include "morphokd/nn/train_chain.hpp"

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
  return std::unique_ptr<TrainChain>(new TrainChain(net, ops::TrainingChain(std::move(blocks)), std::move(block_of)));
}

bool TrainChain::preferred(Index batch) const {
  if (!ops::TrainingChain::blocked() || !net_.training() || batch_images(batch) != batch) return false;
  for (std::size_t i = 0; i < net_.size(); ++i) {  // what the chain does not compute
    if (auto* relu = dynamic_cast<const ReLU*>(&net_.at(i)); relu && relu->guided()) return false;
    if (auto* conv = dynamic_cast<const Conv2d*>(&net_.at(i)); conv && conv->algorithm != ops::ConvAlgorithm::direct) return false;
  }
  return true;
}

void TrainChain::forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out) {
  check(net_.training(), "TrainChain: the network is in eval mode");
  detail::chain_taps(taps, block_of_, "TrainChain", "inside a conv block", blocks_);
  chain_.forward(x, blocks_, out);
  for (std::size_t i = 0; i < net_.size(); ++i)
    if (auto* bn = dynamic_cast<BatchNorm2d*>(&net_.at(i))) bn->track_batch(net_.output_shape(x.shape(), i));
}

void TrainChain::backward(std::span<const Tensor> grads) { chain_.backward(grads); }

}  // namespace morphokd::nn
