#include "morphokd/nn/optim.hpp"

#include <cmath>

#include "morphokd/error.hpp"

namespace morphokd::nn {

Sgd::Sgd(std::vector<Parameter*> params, SgdOptions o) : options(o), params_(std::move(params)) {
  check(o.lr >= 0 && o.momentum >= 0 && o.weight_decay >= 0, "SGD: learning rate, momentum and weight decay must be >= 0");
  check(!o.nesterov || (o.momentum > 0 && o.dampening == 0), "SGD: Nesterov momentum needs momentum > 0 and zero dampening");
}

void Sgd::step() {
  const bool first = momentum_.empty();
  for (std::size_t k = 0; k < params_.size(); ++k) {
    Parameter& p = *params_[k];
    float* w = p.value.data();
    const float* g = p.grad.data();
    const Index n = p.value.numel();
    if (options.momentum != 0.0f && first) momentum_.push_back(Tensor::empty(p.value.shape()));
    float* buf = options.momentum != 0.0f ? momentum_[k].data() : nullptr;
#pragma omp parallel for schedule(static)
    for (Index i = 0; i < n; ++i) {
      float d = g[i];
      if (options.weight_decay != 0.0f) d += options.weight_decay * w[i];
      if (buf) {
        buf[i] = first ? d : options.momentum * buf[i] + (1.0f - options.dampening) * d;
        d = options.nesterov ? d + options.momentum * buf[i] : buf[i];
      }
      w[i] += -options.lr * d;
    }
  }
}

Adam::Adam(std::vector<Parameter*> params, AdamOptions o) : options(o), params_(std::move(params)) {
  check(o.lr >= 0 && o.eps >= 0 && o.weight_decay >= 0, "Adam: learning rate, eps and weight decay must be >= 0");
  check(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, "Adam: betas must be in [0, 1)");
  for (Parameter* p : params_) {
    state_.m.push_back(Tensor::zeros(p->value.shape()));
    state_.v.push_back(Tensor::zeros(p->value.shape()));
  }
}

void Adam::step() {
  const std::int64_t t = ++state_.step;
  // As torch.optim.Adam: bias corrections in double, applied as float scalars.
  const double bc1 = 1.0 - std::pow(static_cast<double>(options.beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(options.beta2), static_cast<double>(t));
  const float step_size = static_cast<float>(options.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float one_minus_b1 = static_cast<float>(1.0 - options.beta1);
  const float one_minus_b2 = static_cast<float>(1.0 - options.beta2);
  for (std::size_t k = 0; k < params_.size(); ++k) {
    float* w = params_[k]->value.data();
    const float* g = params_[k]->grad.data();
    float* m = state_.m[k].data();
    float* v = state_.v[k].data();
    const Index n = params_[k]->value.numel();
#pragma omp parallel for schedule(static)
    for (Index i = 0; i < n; ++i) {
      const float d = options.weight_decay != 0.0f ? g[i] + options.weight_decay * w[i] : g[i];
      m[i] = m[i] * options.beta1 + one_minus_b1 * d;
      v[i] = v[i] * options.beta2 + one_minus_b2 * d * d;
      const float denom = std::sqrt(v[i]) / bc2_sqrt + options.eps;
      w[i] += -step_size * (m[i] / denom);
    }
  }
}

}  // namespace morphokd::nn
