// The layer modules. Convolutions are 3x3, stride 1, padding 1 (all VGG-style nets here).
#pragma once
#include "morphokd/nn/module.hpp"
#include "morphokd/ops/ops.hpp"

namespace morphokd::nn {

class Conv2d final : public Module {
 public:
  Conv2d(Index in_channels, Index out_channels, bool bias);
  std::string kind() const override { return "Conv2d"; }
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, bool param_grads) override;
  std::vector<Parameter*> parameters() override;
  Parameter weight;  // [Co, Ci, 3, 3]
  Parameter bias;    // [Co]; unused when the conv has no bias
  ops::ConvAlgorithm algorithm = ops::ConvAlgorithm::direct;  // of the forward and data gradient
  bool has_bias() const { return has_bias_; }

 private:
  bool has_bias_;
};

// Conv weights [Co, Ci, kh, kw] summed over their input channels into `gray` [Co, 1, kh, kw]
// (resized), in channel order: on one channel they give what the weights give on its Ci copies.
void sum_input_channels(const Tensor& weight, Tensor& gray);

class ReLU final : public Module {
 public:
  std::string kind() const override { return "ReLU"; }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(const Tensor& x, Tensor& y) override;
  // Guided: dx = max(dy, 0) where x > 0, else 0 (the ordinary rule, then negatives cut).
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, bool param_grads) override;
  void set_guided(bool on) override { guided_ = on; }
  bool guided() const { return guided_; }

 private:
  bool guided_ = false;
};

class MaxPool2d final : public Module {  // 2x2, stride 2
 public:
  std::string kind() const override { return "MaxPool2d"; }
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, bool param_grads) override;

 private:
  ops::PoolWorkspace ws_;
};

class BatchNorm2d final : public Module {
 public:
  explicit BatchNorm2d(Index channels, float eps = 1e-5f, float momentum = 0.1f);
  std::string kind() const override { return "BatchNorm2d"; }
  Shape output_shape(const Shape& in) const override { return in; }
  // Training: batch statistics, and the running statistics move by `momentum` (PyTorch:
  // running_var takes the unbiased batch variance). Eval: running statistics.
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, bool param_grads) override;
  std::vector<Parameter*> parameters() override { return {&weight, &bias}; }
  void buffers(std::map<std::string, Tensor*>& floats, std::map<std::string, std::int64_t*>& ints) override;

  Parameter weight, bias;  // gamma, beta [C]
  Tensor running_mean, running_var;
  std::int64_t num_batches_tracked = 0;
  float eps, momentum;

  // The batch statistics of the last training forward (mean, biased variance), which the
  // backward pass reads; nn::TrainChain writes them in its place.
  Tensor& batch_mean() { return save_mean_; }
  Tensor& batch_var() { return save_var_; }
  // After the batch statistics of an input of shape x: the running statistics move.
  void track_batch(const Shape& x);

 private:
  Tensor save_mean_, save_var_;  // batch statistics of the last training forward
  Tensor dx_scratch_;            // dx when the caller does not want it but BN must compute it
};

class Linear final : public Module {
 public:
  Linear(Index in_features, Index out_features, bool bias = true);
  std::string kind() const override { return "Linear"; }
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, bool param_grads) override;
  std::vector<Parameter*> parameters() override;
  Parameter weight, bias;  // [O, I], [O]; bias unused when has_bias() is false
  bool has_bias() const { return has_bias_; }

 private:
  bool has_bias_;
};

// [N, C, H, W] -> [N, C*H*W] (a copy into the planned buffer; gradients likewise).
class Flatten final : public Module {
 public:
  std::string kind() const override { return "Flatten"; }
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, bool param_grads) override;
};

// [N, C, H, W] -> [N, C]
class GlobalAvgPool final : public Module {
 public:
  std::string kind() const override { return "AdaptiveAvgPool2d"; }
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, bool param_grads) override;
};

}  // namespace morphokd::nn
