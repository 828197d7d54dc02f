// The oneDNN backend: same signatures and contracts as morphokd::ops (validated there).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "morphokd/ops/chain.hpp"
#include "morphokd/ops/ops.hpp"

namespace morphokd::onednn {

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y, ops::ConvAlgorithm alg);
void conv2d_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, ops::ConvAlgorithm alg);
void conv2d_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db);
// Deterministic mode's: the reference kernel's fixed summation order, oneDNN's sgemm inside.
void conv2d_backward_weights_fixed_order(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db);
void relu_forward(const Tensor& x, Tensor& y);
void relu_backward(const Tensor& x, const Tensor& dy, Tensor& dx);
void batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y,
                             Tensor& save_mean, Tensor& save_var);
void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                            const Tensor& var, float eps, Tensor& y);
// `global_stats` selects the eval-mode gradient (statistics held constant).
void batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean, const Tensor& var,
                        float eps, bool global_stats, Tensor& dx, Tensor* dgamma, Tensor* dbeta);
void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y);
void linear_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx);
void linear_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db);
void global_avg_pool_forward(const Tensor& x, Tensor& y);
void global_avg_pool_backward(const Tensor& dy, Tensor& dx);
// log-softmax primitive; probs = exp(log-probs); returns the mean loss.
double softmax_cross_entropy_forward(const Tensor& logits, std::span<const std::int64_t> labels, Tensor& probs);

std::vector<std::string> kernels_used();
std::string fpmath_mode();
void release_scratch();

// ops::InferenceChain on oneDNN, for one input shape (onednn_chain.cpp).
class ChainPlan {
 public:
  ChainPlan(const std::vector<ops::ChainStage>& stages, const Shape& in, Precision precision);
  ~ChainPlan();
  void run(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ops::GradientChain on oneDNN in blocked layouts, for one input shape (onednn_gradient_chain.cpp).
class GradPlan {
 public:
  // `taps`: the outputs forward gives, in order (a tapped output is kept; the others may not be).
  GradPlan(const std::vector<ops::ChainStage>& stages, const Shape& in, std::span<const std::size_t> taps,
           ops::ConvAlgorithm alg);
  ~GradPlan();
  // out: one map per tap.
  void forward(const Tensor& x, std::vector<Tensor>& out);
  // grads: one per tap; dx: the input's shape.
  void backward(std::span<const Tensor> grads, Tensor& dx);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ops::TrainingChain on oneDNN in blocked layouts, for one input shape (onednn_train_chain.cpp).
// Its buffers are slots of `arena`, grown where too small, which must outlive the plan: the
// next plan, for another shape, reuses them. x must stay unchanged from forward to backward.
class TrainPlan {
 public:
  // `taps`: the outputs forward will give (a tapped output is kept).
  TrainPlan(const std::vector<ops::TrainBlock>& blocks, const Shape& in, std::span<const std::size_t> taps,
            std::vector<Tensor>& arena);
  ~TrainPlan();
  void forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out);
  void backward(std::span<const std::size_t> taps, std::span<const Tensor> grads);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace morphokd::onednn
