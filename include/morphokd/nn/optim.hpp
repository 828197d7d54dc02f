// Optimizers with PyTorch's exact update rules (torch.optim 1.13, single-tensor path).
// Each step reads Parameter::grad and updates Parameter::value in place.
#pragma once
#include <cstdint>
#include <vector>

#include "morphokd/nn/module.hpp"

namespace morphokd::nn {

struct SgdOptions {
  float lr = 0.01f;
  float momentum = 0.0f;
  float dampening = 0.0f;
  float weight_decay = 0.0f;  // L2: g += weight_decay * p
  bool nesterov = false;
};

class Sgd {
 public:
  Sgd(std::vector<Parameter*> params, SgdOptions options);
  void step();
  SgdOptions options;
  // Momentum buffers per parameter (constructor order), for checkpoints: empty before the
  // first step. Restoring them makes the next step identical to an uninterrupted run's.
  std::vector<Tensor>& momentum_buffers() { return momentum_; }

 private:
  std::vector<Parameter*> params_;
  std::vector<Tensor> momentum_;  // empty until the first step (PyTorch: buffer = first gradient)
};

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // L2 added to the gradient (Adam, not AdamW)
};

class Adam {
 public:
  Adam(std::vector<Parameter*> params, AdamOptions options);
  void step();
  AdamOptions options;

  // The complete state, for checkpoints: moments per parameter (in constructor order) and
  // the step count. Restoring it makes the next step identical to an uninterrupted run's.
  struct State {
    std::vector<Tensor> m, v;
    std::int64_t step = 0;
  };
  State& state() { return state_; }

 private:
  std::vector<Parameter*> params_;
  State state_;
};

}  // namespace morphokd::nn
