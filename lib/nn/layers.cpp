#include "morphokd/nn/layers.hpp"

#include <algorithm>

#include "morphokd/error.hpp"
#include "morphokd/parallel.hpp"

namespace morphokd::nn {

namespace {
Parameter make_param(const char* name, const Shape& shape) {
  return {name, Tensor::zeros(shape), Tensor::zeros(shape)};
}
void need_rank4(const Shape& in, const char* who) {
  if (in.rank() != 4) fail(std::string(who) + ": expected an [N, C, H, W] input, got " + in.str());
}
}  // namespace

Conv2d::Conv2d(Index in_channels, Index out_channels, bool with_bias)
    : weight(make_param("weight", {out_channels, in_channels, 3, 3})),
      bias(make_param("bias", {with_bias ? out_channels : 0})),
      has_bias_(with_bias) {}

void sum_input_channels(const Tensor& weight, Tensor& gray) {
  const Index co = weight.dim(0), ci = weight.dim(1), k = weight.dim(2) * weight.dim(3);
  fit_shape(gray, {co, 1, weight.dim(2), weight.dim(3)});
  for (Index o = 0; o < co; ++o)
    for (Index j = 0; j < k; ++j) {
      float s = weight.data()[o * ci * k + j];
      for (Index c = 1; c < ci; ++c) s += weight.data()[(o * ci + c) * k + j];
      gray.data()[o * k + j] = s;
    }
}

Shape Conv2d::output_shape(const Shape& in) const {
  need_rank4(in, "Conv2d");
  if (in[1] != weight.value.dim(1))
    fail("Conv2d: input has " + std::to_string(in[1]) + " channels, weights expect " + std::to_string(weight.value.dim(1)));
  return {in[0], weight.value.dim(0), in[2], in[3]};
}

void Conv2d::forward(const Tensor& x, Tensor& y) {
  ops::conv2d_forward(x, weight.value, has_bias() ? &bias.value : nullptr, y, algorithm);
}

void Conv2d::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx, bool param_grads) {
  if (param_grads) ops::conv2d_backward_weights(x, dy, weight.grad, has_bias() ? &bias.grad : nullptr);
  if (dx) ops::conv2d_backward_data(dy, weight.value, *dx, algorithm);
}

std::vector<Parameter*> Conv2d::parameters() {
  if (has_bias()) return {&weight, &bias};
  return {&weight};
}

void ReLU::forward(const Tensor& x, Tensor& y) { ops::relu_forward(x, y); }

void ReLU::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx, bool) {
  if (!dx) return;
  ops::relu_backward(x, dy, *dx);
  if (guided_)
    for (float& v : dx->span()) v = std::max(v, 0.0f);
}

Shape MaxPool2d::output_shape(const Shape& in) const {
  need_rank4(in, "MaxPool2d");
  return {in[0], in[1], in[2] / 2, in[3] / 2};
}

void MaxPool2d::forward(const Tensor& x, Tensor& y) { ops::maxpool2x2_forward(x, y, ws_); }

void MaxPool2d::backward(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx, bool) {
  if (dx) ops::maxpool2x2_backward(dy, ws_, *dx);
}

BatchNorm2d::BatchNorm2d(Index channels, float eps_, float momentum_)
    : weight{"weight", Tensor::full({channels}, 1.0f), Tensor::zeros({channels})},
      bias(make_param("bias", {channels})),
      running_mean(Tensor::zeros({channels})),
      running_var(Tensor::full({channels}, 1.0f)),
      eps(eps_),
      momentum(momentum_),
      save_mean_(Tensor::zeros({channels})),
      save_var_(Tensor::zeros({channels})) {}

void BatchNorm2d::buffers(std::map<std::string, Tensor*>& floats, std::map<std::string, std::int64_t*>& ints) {
  floats["running_mean"] = &running_mean;
  floats["running_var"] = &running_var;
  ints["num_batches_tracked"] = &num_batches_tracked;
}

void BatchNorm2d::forward(const Tensor& x, Tensor& y) {
  if (!training()) {
    ops::batchnorm_forward_eval(x, weight.value, bias.value, running_mean, running_var, eps, y);
    return;
  }
  ops::batchnorm_forward_train(x, weight.value, bias.value, eps, y, save_mean_, save_var_);
  track_batch(x.shape());
}

void BatchNorm2d::track_batch(const Shape& x) {
  const Index count = batch_images(x[0]) * x[2] * x[3];  // the whole batch's, when split
  if (count < 2) fail("BatchNorm2d: training needs more than one value per channel, got input " + x.str());
  const float unbias = static_cast<float>(count) / static_cast<float>(count - 1);
  float* rm = running_mean.data();
  float* rv = running_var.data();
  for (Index c = 0; c < running_mean.numel(); ++c) {
    rm[c] = (1.0f - momentum) * rm[c] + momentum * save_mean_.data()[c];
    rv[c] = (1.0f - momentum) * rv[c] + momentum * save_var_.data()[c] * unbias;
  }
  ++num_batches_tracked;
}

void BatchNorm2d::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx, bool param_grads) {
  if (!dx && !param_grads) return;
  if (!dx) {
    fit_shape(dx_scratch_, x.shape());
    dx = &dx_scratch_;
  }
  Tensor* dg = param_grads ? &weight.grad : nullptr;
  Tensor* db = param_grads ? &bias.grad : nullptr;
  if (training())
    ops::batchnorm_backward_train(x, dy, weight.value, save_mean_, save_var_, eps, *dx, dg, db);
  else
    ops::batchnorm_backward_eval(x, dy, weight.value, running_mean, running_var, eps, *dx, dg, db);
}

Linear::Linear(Index in_features, Index out_features, bool with_bias)
    : weight(make_param("weight", {out_features, in_features})),
      bias(make_param("bias", {with_bias ? out_features : 0})),
      has_bias_(with_bias) {}

Shape Linear::output_shape(const Shape& in) const {
  if (in.rank() != 2 || in[1] != weight.value.dim(1))
    fail("Linear: expected an [N, " + std::to_string(weight.value.dim(1)) + "] input, got " + in.str());
  return {in[0], weight.value.dim(0)};
}

void Linear::forward(const Tensor& x, Tensor& y) {
  ops::linear_forward(x, weight.value, has_bias() ? &bias.value : nullptr, y);
}

void Linear::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx, bool param_grads) {
  if (param_grads) ops::linear_backward_weights(x, dy, weight.grad, has_bias() ? &bias.grad : nullptr);
  if (dx) ops::linear_backward_data(dy, weight.value, *dx);
}

std::vector<Parameter*> Linear::parameters() {
  if (has_bias()) return {&weight, &bias};
  return {&weight};
}

Shape Flatten::output_shape(const Shape& in) const {
  if (in.rank() < 1) fail("Flatten: scalar input");
  return {in[0], in[0] ? in.numel() / in[0] : 0};
}

void Flatten::forward(const Tensor& x, Tensor& y) { y.copy_from(x.reshape(y.shape())); }

void Flatten::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx, bool) {
  if (dx) dx->copy_from(dy.reshape(x.shape()));
}

Shape GlobalAvgPool::output_shape(const Shape& in) const {
  need_rank4(in, "GlobalAvgPool");
  return {in[0], in[1]};
}

void GlobalAvgPool::forward(const Tensor& x, Tensor& y) { ops::global_avg_pool_forward(x, y); }

void GlobalAvgPool::backward(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx, bool) {
  if (dx) ops::global_avg_pool_backward(dy, *dx);
}

}  // namespace morphokd::nn
