// Every op is a forward/backward pair of free functions over explicit, caller-allocated
// buffers, in a fixed argument order: inputs, then parameters, then outputs.
//
// Gradient convention: every backward OVERWRITES its output gradients (never
// accumulates); a caller that needs a sum adds explicitly. A null output pointer means
// "not needed" and skips that work (the frozen teacher asks for no weight gradients).
//
// Each function runs on current_backend(): `onednn` (oneDNN primitives, built once per
// shape and reused) or `reference` (plain loops and Eigen GEMM, readable, deterministic).
// In deterministic mode (runtime.hpp, the default) the onednn backend hands the ops whose
// oneDNN reductions follow the thread count to the reference kernels: both batch-norm
// backwards, batch-norm training forward, and linear. conv2d's weight gradient keeps the
// reference kernel's fixed order but multiplies with oneDNN's sgemm, one thread per product.
// Ops that oneDNN has no primitive for (distance, softmax cross-entropy's loss) run the
// same loop on both backends, and so does max-pool on our NCHW buffers: oneDNN's
// plain-layout pooling (simple_nchw) measured 10x slower than our OpenMP loop (its blocked
// pooling serves the inference chain). op_uses_onednn() says which.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "morphokd/runtime.hpp"
#include "morphokd/tensor.hpp"

namespace morphokd::ops {

// The registry the test harness checks: an op added here without a harness entry fails
// the suite (tests/unit/test_op_harness.cpp).
enum class Op {
  conv2d,
  relu,
  maxpool2x2,
  batchnorm_train,
  batchnorm_eval,
  linear,
  global_avg_pool,
  softmax_cross_entropy,
  distance,
  kCount
};
std::string_view op_name(Op op);
// True when the onednn backend runs a oneDNN primitive for this op (else shared loops).
bool op_uses_onednn(Op op);

// ---- conv2d: 3x3, stride 1, padding 1 --------------------------------------------------
// winograd (the fp32-winograd teacher): onednn runs oneDNN's Winograd F(4x4, 3x3) kernels
// (AVX-512) for the forward and the data gradient, which approximate the direct convolution
// to ~1e-5. Their sums follow the batch size, and for a batch no larger than the thread
// count oneDNN switches kernel; so both run on chunks of exactly kWinogradChunk images, the
// last zero-padded: an image's bits then depend neither on its batch nor on the thread count
// (below kWinogradChunk; more is refused). Where oneDNN has no Winograd kernel for a shape,
// direct. reference: direct, what Winograd approximates.
enum class ConvAlgorithm { direct, winograd };
// A precision's fp32 convolutions: Winograd under fp32-winograd, else direct.
inline ConvAlgorithm conv_algorithm(Precision p) {
  return p == Precision::fp32_winograd ? ConvAlgorithm::winograd : ConvAlgorithm::direct;
}
inline constexpr Index kWinogradChunk = 64;
// Throws unless num_threads() < kWinogradChunk (above, oneDNN changes its Winograd kernel).
void check_winograd_threads();
// x [N,Ci,H,W], w [Co,Ci,3,3], b [Co] or null, y [N,Co,H,W]
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y,
                    ConvAlgorithm alg = ConvAlgorithm::direct);
// dy [N,Co,H,W], w [Co,Ci,3,3] -> dx [N,Ci,H,W]
void conv2d_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, ConvAlgorithm alg = ConvAlgorithm::direct);
// x [N,Ci,H,W], dy [N,Co,H,W] -> dw [Co,Ci,3,3], db [Co] (null: no bias)
void conv2d_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db);

// ---- ReLU ------------------------------------------------------------------------------
// y = max(x, 0); dx = dy where x > 0 else 0. Any shape.
void relu_forward(const Tensor& x, Tensor& y);
void relu_backward(const Tensor& x, const Tensor& dy, Tensor& dx);

// ---- max-pool 2x2 stride 2 (floor: an odd last row/column is dropped) -------------------
// Which input won each window, for the backward pass: one byte per output. Filled by
// forward; opaque.
struct PoolWorkspace {
  std::vector<std::uint8_t> which;
};
// x [N,C,H,W] -> y [N,C,H/2,W/2]
void maxpool2x2_forward(const Tensor& x, Tensor& y, PoolWorkspace& ws);
// dy [N,C,H/2,W/2] -> dx [N,C,H,W]
void maxpool2x2_backward(const Tensor& dy, const PoolWorkspace& ws, Tensor& dx);

// ---- BatchNorm2d ----------------------------------------------------------------------
// Training: normalise with batch statistics; save_mean/save_var [C] receive the batch mean
// and biased variance (running statistics are updated by the module, see nn/).
// x [N,C,H,W], gamma/beta [C] -> y [N,C,H,W]
void batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y,
                             Tensor& save_mean, Tensor& save_var);
// Gradient through batch statistics. dgamma/dbeta may be null.
void batchnorm_backward_train(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& save_mean,
                              const Tensor& save_var, float eps, Tensor& dx, Tensor* dgamma, Tensor* dbeta);
// Eval: fixed statistics (running mean/var), an affine map per channel.
void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                            const Tensor& var, float eps, Tensor& y);
void batchnorm_backward_eval(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                             const Tensor& var, float eps, Tensor& dx, Tensor* dgamma, Tensor* dbeta);

// ---- linear: y = x w^T + b --------------------------------------------------------------
// x [N,I], w [O,I], b [O] or null -> y [N,O]
void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y);
void linear_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx);
void linear_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db);

// ---- global average pool: x [N,C,H,W] -> y [N,C] ----------------------------------------
void global_avg_pool_forward(const Tensor& x, Tensor& y);
void global_avg_pool_backward(const Tensor& dy, Tensor& dx);

// ---- softmax cross-entropy, mean over the batch -----------------------------------------
// logits [N,K], labels N values in [0,K) -> probs [N,K] (kept for backward); returns the loss.
double softmax_cross_entropy_forward(const Tensor& logits, std::span<const std::int64_t> labels, Tensor& probs);
// dlogits = dloss * (probs - onehot(labels)) / N
void softmax_cross_entropy_backward(const Tensor& probs, std::span<const std::int64_t> labels, float dloss,
                                    Tensor& dlogits);

// ---- distance, the distillation piece: per sample, over its flattened map ---------------
// a, b [N, ...] -> cos [N]: a.b / (max(|a|, 1e-8) max(|b|, 1e-8)), PyTorch's eps, and
// mse [N]: mean((a - b)^2). One op, since the loss and the score always take both: each pass
// over the maps serves the two (the maps are tens of MB a batch).
void distance_forward(const Tensor& a, const Tensor& b, Tensor& cos, Tensor& mse);
// da (db) = dcos d cos/da + dmse d mse/da
void distance_backward(const Tensor& a, const Tensor& b, const Tensor& dcos, const Tensor& dmse, Tensor* da, Tensor* db);

// The ops' shared scratch (layout changes, Winograd chunks), grown to the largest call so
// far, back to the system until the next call needs it.
void release_scratch();

// "op [shapes] -> implementation" for every oneDNN primitive created so far (audit logs).
std::vector<std::string> onednn_kernels_used();
// oneDNN's default fp32 math mode as the ops run it: "strict" (set over any
// ONEDNN_DEFAULT_FPMATH_MODE in the environment), or "none" without oneDNN.
std::string onednn_fpmath_mode();

}  // namespace morphokd::ops
