#include "morphokd/nn/frozen.hpp"

#include "morphokd/error.hpp"
#include "morphokd/nn/layers.hpp"
#include "chain_taps.hpp"

namespace morphokd::nn {

std::unique_ptr<FrozenForward> FrozenForward::compile(Sequential& net, Precision precision) {
  std::vector<ops::ChainStage> stages;
  std::vector<std::size_t> stage_of(net.size(), detail::kNoOutput);
  for (std::size_t i = 0; i < net.size(); ++i) {
    Module& m = net.at(i);
    if (auto* conv = dynamic_cast<Conv2d*>(&m)) {
      stages.push_back({&conv->weight.value, conv->has_bias() ? &conv->bias.value : nullptr, false});
    } else if (dynamic_cast<ReLU*>(&m) && i > 0 && dynamic_cast<Conv2d*>(&net.at(i - 1))) {
      stages.back().relu = true;  // the conv's own output is no longer materialised
      stage_of[i - 1] = detail::kNoOutput;
    } else if (dynamic_cast<MaxPool2d*>(&m)) {
      stages.push_back({});
    } else {
      return nullptr;
    }
    stage_of[i] = stages.size() - 1;
  }
  if (stages.empty()) return nullptr;
  ops::GradientChain gradient(stages, ops::conv_algorithm(precision));
  return std::unique_ptr<FrozenForward>(
      new FrozenForward(ops::InferenceChain(std::move(stages), precision), std::move(gradient), std::move(stage_of)));
}

void FrozenForward::forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out) {
  detail::chain_taps(taps, stage_of_, "FrozenForward", "conv fused with its ReLU", stages_);
  chain_.forward(x, stages_, out);
}

void FrozenForward::forward_for_gradient(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out) {
  detail::chain_taps(taps, stage_of_, "FrozenForward", "conv fused with its ReLU", stages_);
  gradient_.forward(x, stages_, out);
}

}  // namespace morphokd::nn
