// The public ops: validate every buffer's shape, then run the current backend.
#include "morphokd/ops/ops.hpp"

#include <cstring>
#include <string>

#include "morphokd/error.hpp"
#include "morphokd_build_config.hpp"
#include "reference/kernels.hpp"
#if MORPHOKD_HAS_ONEDNN
#include "onednn/onednn_ops.hpp"
#define MORPHOKD_ON_ONEDNN(call)                   \
  if (current_backend() == Backend::onednn) {      \
    call;                                          \
    return;                                        \
  }
// Ops whose oneDNN reductions follow the thread count: reference kernels in deterministic mode.
#define MORPHOKD_ON_ONEDNN_UNLESS_DETERMINISTIC(call) \
  if (!deterministic()) {                             \
    MORPHOKD_ON_ONEDNN(call)                          \
  }
#else
#define MORPHOKD_ON_ONEDNN(call)
#define MORPHOKD_ON_ONEDNN_UNLESS_DETERMINISTIC(call)
#endif

namespace morphokd::ops {

namespace {
void need_contiguous(std::initializer_list<const Tensor*> ts, const char* op) {
  for (const Tensor* t : ts)
    if (t && !t->is_contiguous()) fail(std::string(op) + ": buffers must be contiguous");
}
const float* ptr(const Tensor* t) { return t ? t->data() : nullptr; }
float* ptr(Tensor* t) { return t ? t->data() : nullptr; }

ref::ConvDims conv_dims(const Tensor& x, const Tensor& w, const char* op) {
  check_rank(x, 4, op);
  check_rank(w, 4, op);
  if (w.dim(1) != x.dim(1) || w.dim(2) != 3 || w.dim(3) != 3)
    fail(std::string(op) + ": weights " + w.shape().str() + " do not fit a 3x3 conv of input " + x.shape().str());
  return {x.dim(0), x.dim(1), w.dim(0), x.dim(2), x.dim(3)};
}
Shape conv_out(const ref::ConvDims& d) { return {d.n, d.co, d.h, d.w}; }

ref::PoolDims pool_dims(const Tensor& x, const char* op) {
  check_rank(x, 4, op);
  if (x.dim(2) < 2 || x.dim(3) < 2) fail(std::string(op) + ": input " + x.shape().str() + " is smaller than 2x2");
  return {x.dim(0), x.dim(1), x.dim(2), x.dim(3)};
}

ref::BnDims bn_dims(const Tensor& x, std::initializer_list<const Tensor*> per_channel, const char* op) {
  check_rank(x, 4, op);
  for (const Tensor* t : per_channel)
    if (t) check_shape(*t, {x.dim(1)}, op);
  return {x.dim(0), x.dim(1), x.dim(2) * x.dim(3)};
}

ref::LinearDims linear_dims(const Tensor& x, const Tensor& w, const char* op) {
  check_rank(x, 2, op);
  check_rank(w, 2, op);
  if (w.dim(1) != x.dim(1)) fail(std::string(op) + ": weights " + w.shape().str() + " do not fit input " + x.shape().str());
  return {x.dim(0), x.dim(1), w.dim(0)};
}

// Per-sample ops: [N, ...] pairs; returns {N, elements per sample}.
std::pair<Index, Index> pair_dims(const Tensor& a, const Tensor& b, const char* op) {
  if (a.rank() < 1 || a.dim(0) < 1) fail(std::string(op) + ": empty batch");
  check_shape(b, a.shape(), op);
  return {a.dim(0), a.numel() / a.dim(0)};
}

void check_labels(std::span<const std::int64_t> labels, Index n, Index k, const char* op) {
  if (static_cast<Index>(labels.size()) != n) fail(std::string(op) + ": " + std::to_string(labels.size()) + " labels for " + std::to_string(n) + " rows");
  for (std::int64_t l : labels)
    if (l < 0 || l >= k) fail(std::string(op) + ": label " + std::to_string(l) + " outside [0, " + std::to_string(k) + ")");
}
}  // namespace

std::string_view op_name(Op op) {
  switch (op) {
    case Op::conv2d: return "conv2d";
    case Op::relu: return "relu";
    case Op::maxpool2x2: return "maxpool2x2";
    case Op::batchnorm_train: return "batchnorm_train";
    case Op::batchnorm_eval: return "batchnorm_eval";
    case Op::linear: return "linear";
    case Op::global_avg_pool: return "global_avg_pool";
    case Op::softmax_cross_entropy: return "softmax_cross_entropy";
    case Op::distance: return "distance";
    case Op::kCount: break;
  }
  return "?";
}

bool op_uses_onednn(Op op) { return MORPHOKD_HAS_ONEDNN && op != Op::distance && op != Op::maxpool2x2; }

void check_winograd_threads() {
  check(num_threads() < kWinogradChunk, "Winograd convolutions (precision fp32-winograd) run on at most " +
                                            std::to_string(kWinogradChunk - 1) +
                                            " threads (oneDNN changes its Winograd kernel there), got " +
                                            std::to_string(num_threads()));
}

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y, ConvAlgorithm alg) {
  const auto d = conv_dims(x, w, "conv2d_forward");
  if (b) check_shape(*b, {d.co}, "conv2d_forward bias");
  check_shape(y, conv_out(d), "conv2d_forward output");
  need_contiguous({&x, &w, b, &y}, "conv2d_forward");
  MORPHOKD_ON_ONEDNN(onednn::conv2d_forward(x, w, b, y, alg));
  ref::conv2d_forward(d, x.data(), w.data(), ptr(b), y.data());
}

void conv2d_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, ConvAlgorithm alg) {
  const auto d = conv_dims(dx, w, "conv2d_backward_data");
  check_shape(dy, conv_out(d), "conv2d_backward_data output gradient");
  need_contiguous({&dy, &w, &dx}, "conv2d_backward_data");
  MORPHOKD_ON_ONEDNN(onednn::conv2d_backward_data(dy, w, dx, alg));
  ref::conv2d_backward_data(d, dy.data(), w.data(), dx.data());
}

void conv2d_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db) {
  const auto d = conv_dims(x, dw, "conv2d_backward_weights");
  check_shape(dy, conv_out(d), "conv2d_backward_weights output gradient");
  if (db) check_shape(*db, {d.co}, "conv2d_backward_weights bias gradient");
  need_contiguous({&x, &dy, &dw, db}, "conv2d_backward_weights");
  MORPHOKD_ON_ONEDNN(deterministic() ? onednn::conv2d_backward_weights_fixed_order(x, dy, dw, db)
                                      : onednn::conv2d_backward_weights(x, dy, dw, db));
  ref::conv2d_backward_weights(d, x.data(), dy.data(), dw.data(), ptr(db));
}

void relu_forward(const Tensor& x, Tensor& y) {
  check_shape(y, x.shape(), "relu_forward output");
  need_contiguous({&x, &y}, "relu_forward");
  MORPHOKD_ON_ONEDNN(onednn::relu_forward(x, y));
  ref::relu_forward(x.numel(), x.data(), y.data());
}

void relu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  check_shape(dy, x.shape(), "relu_backward output gradient");
  check_shape(dx, x.shape(), "relu_backward input gradient");
  need_contiguous({&x, &dy, &dx}, "relu_backward");
  MORPHOKD_ON_ONEDNN(onednn::relu_backward(x, dy, dx));
  ref::relu_backward(x.numel(), x.data(), dy.data(), dx.data());
}

void maxpool2x2_forward(const Tensor& x, Tensor& y, PoolWorkspace& ws) {
  const auto d = pool_dims(x, "maxpool2x2_forward");
  check_shape(y, {d.n, d.c, d.h / 2, d.w / 2}, "maxpool2x2_forward output");
  need_contiguous({&x, &y}, "maxpool2x2_forward");
  ws.which.resize(static_cast<std::size_t>(y.numel()));
  ref::maxpool2x2_forward(d, x.data(), y.data(), ws.which.data());
}

void maxpool2x2_backward(const Tensor& dy, const PoolWorkspace& ws, Tensor& dx) {
  const auto d = pool_dims(dx, "maxpool2x2_backward");
  check_shape(dy, {d.n, d.c, d.h / 2, d.w / 2}, "maxpool2x2_backward output gradient");
  need_contiguous({&dy, &dx}, "maxpool2x2_backward");
  check(ws.which.size() == static_cast<std::size_t>(dy.numel()), "maxpool2x2_backward: workspace is from another shape");
  ref::maxpool2x2_backward(d, dy.data(), ws.which.data(), dx.data());
}

void batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y,
                             Tensor& save_mean, Tensor& save_var) {
  const auto d = bn_dims(x, {&gamma, &beta, &save_mean, &save_var}, "batchnorm_forward_train");
  check_shape(y, x.shape(), "batchnorm_forward_train output");
  need_contiguous({&x, &gamma, &beta, &y, &save_mean, &save_var}, "batchnorm_forward_train");
  MORPHOKD_ON_ONEDNN_UNLESS_DETERMINISTIC(onednn::batchnorm_forward_train(x, gamma, beta, eps, y, save_mean, save_var));
  ref::batchnorm_stats(d, x.data(), save_mean.data(), save_var.data());
  ref::batchnorm_apply(d, x.data(), gamma.data(), beta.data(), save_mean.data(), save_var.data(), eps, y.data());
}

void batchnorm_backward_train(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& save_mean,
                              const Tensor& save_var, float eps, Tensor& dx, Tensor* dgamma, Tensor* dbeta) {
  const auto d = bn_dims(x, {&gamma, &save_mean, &save_var, dgamma, dbeta}, "batchnorm_backward_train");
  check_shape(dy, x.shape(), "batchnorm_backward_train output gradient");
  check_shape(dx, x.shape(), "batchnorm_backward_train input gradient");
  need_contiguous({&x, &dy, &gamma, &save_mean, &save_var, &dx, dgamma, dbeta}, "batchnorm_backward_train");
  MORPHOKD_ON_ONEDNN_UNLESS_DETERMINISTIC(onednn::batchnorm_backward(x, dy, gamma, save_mean, save_var, eps, false, dx, dgamma, dbeta));
  ref::batchnorm_backward(d, x.data(), dy.data(), gamma.data(), save_mean.data(), save_var.data(), eps, true,
                          dx.data(), ptr(dgamma), ptr(dbeta));
}

void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                            const Tensor& var, float eps, Tensor& y) {
  const auto d = bn_dims(x, {&gamma, &beta, &mean, &var}, "batchnorm_forward_eval");
  check_shape(y, x.shape(), "batchnorm_forward_eval output");
  need_contiguous({&x, &gamma, &beta, &mean, &var, &y}, "batchnorm_forward_eval");
  MORPHOKD_ON_ONEDNN(onednn::batchnorm_forward_eval(x, gamma, beta, mean, var, eps, y));
  ref::batchnorm_apply(d, x.data(), gamma.data(), beta.data(), mean.data(), var.data(), eps, y.data());
}

void batchnorm_backward_eval(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                             const Tensor& var, float eps, Tensor& dx, Tensor* dgamma, Tensor* dbeta) {
  const auto d = bn_dims(x, {&gamma, &mean, &var, dgamma, dbeta}, "batchnorm_backward_eval");
  check_shape(dy, x.shape(), "batchnorm_backward_eval output gradient");
  check_shape(dx, x.shape(), "batchnorm_backward_eval input gradient");
  need_contiguous({&x, &dy, &gamma, &mean, &var, &dx, dgamma, dbeta}, "batchnorm_backward_eval");
  // The input gradient alone (FGSM, localization) is one product per value, sums nothing:
  // the loop below in every mode, as fast as oneDNN's, which would also sum dgamma and dbeta.
  if (dgamma || dbeta) {
    MORPHOKD_ON_ONEDNN_UNLESS_DETERMINISTIC(onednn::batchnorm_backward(x, dy, gamma, mean, var, eps, true, dx, dgamma, dbeta));
  }
  ref::batchnorm_backward(d, x.data(), dy.data(), gamma.data(), mean.data(), var.data(), eps, false, dx.data(),
                          ptr(dgamma), ptr(dbeta));
}

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  const auto d = linear_dims(x, w, "linear_forward");
  if (b) check_shape(*b, {d.out}, "linear_forward bias");
  check_shape(y, {d.n, d.out}, "linear_forward output");
  need_contiguous({&x, &w, b, &y}, "linear_forward");
  MORPHOKD_ON_ONEDNN_UNLESS_DETERMINISTIC(onednn::linear_forward(x, w, b, y));
  ref::linear_forward(d, x.data(), w.data(), ptr(b), y.data());
}

void linear_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx) {
  const auto d = linear_dims(dx, w, "linear_backward_data");
  check_shape(dy, {d.n, d.out}, "linear_backward_data output gradient");
  need_contiguous({&dy, &w, &dx}, "linear_backward_data");
  MORPHOKD_ON_ONEDNN_UNLESS_DETERMINISTIC(onednn::linear_backward_data(dy, w, dx));
  ref::linear_backward_data(d, dy.data(), w.data(), dx.data());
}

void linear_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db) {
  const auto d = linear_dims(x, dw, "linear_backward_weights");
  check_shape(dy, {d.n, d.out}, "linear_backward_weights output gradient");
  if (db) check_shape(*db, {d.out}, "linear_backward_weights bias gradient");
  need_contiguous({&x, &dy, &dw, db}, "linear_backward_weights");
  MORPHOKD_ON_ONEDNN_UNLESS_DETERMINISTIC(onednn::linear_backward_weights(x, dy, dw, db));
  ref::linear_backward_weights(d, x.data(), dy.data(), dw.data(), ptr(db));
}

void global_avg_pool_forward(const Tensor& x, Tensor& y) {
  check_rank(x, 4, "global_avg_pool_forward");
  check_shape(y, {x.dim(0), x.dim(1)}, "global_avg_pool_forward output");
  need_contiguous({&x, &y}, "global_avg_pool_forward");
  MORPHOKD_ON_ONEDNN(onednn::global_avg_pool_forward(x, y));
  ref::global_avg_pool_forward(x.dim(0) * x.dim(1), x.dim(2) * x.dim(3), x.data(), y.data());
}

void global_avg_pool_backward(const Tensor& dy, Tensor& dx) {
  check_rank(dx, 4, "global_avg_pool_backward");
  check_shape(dy, {dx.dim(0), dx.dim(1)}, "global_avg_pool_backward output gradient");
  need_contiguous({&dy, &dx}, "global_avg_pool_backward");
  MORPHOKD_ON_ONEDNN(onednn::global_avg_pool_backward(dy, dx));
  ref::global_avg_pool_backward(dx.dim(0) * dx.dim(1), dx.dim(2) * dx.dim(3), dy.data(), dx.data());
}

double softmax_cross_entropy_forward(const Tensor& logits, std::span<const std::int64_t> labels, Tensor& probs) {
  check_rank(logits, 2, "softmax_cross_entropy_forward");
  check_shape(probs, logits.shape(), "softmax_cross_entropy_forward probabilities");
  check_labels(labels, logits.dim(0), logits.dim(1), "softmax_cross_entropy_forward");
  need_contiguous({&logits, &probs}, "softmax_cross_entropy_forward");
#if MORPHOKD_HAS_ONEDNN
  if (current_backend() == Backend::onednn) return onednn::softmax_cross_entropy_forward(logits, labels, probs);
#endif
  return ref::softmax_cross_entropy_forward(logits.dim(0), logits.dim(1), logits.data(), labels.data(), probs.data());
}

void softmax_cross_entropy_backward(const Tensor& probs, std::span<const std::int64_t> labels, float dloss,
                                    Tensor& dlogits) {
  check_rank(probs, 2, "softmax_cross_entropy_backward");
  check_shape(dlogits, probs.shape(), "softmax_cross_entropy_backward logits gradient");
  check_labels(labels, probs.dim(0), probs.dim(1), "softmax_cross_entropy_backward");
  need_contiguous({&probs, &dlogits}, "softmax_cross_entropy_backward");
  ref::softmax_cross_entropy_backward(probs.dim(0), probs.dim(1), probs.data(), labels.data(), dloss, dlogits.data());
}

void distance_forward(const Tensor& a, const Tensor& b, Tensor& cos, Tensor& mse) {
  const auto [n, d] = pair_dims(a, b, "distance_forward");
  check_shape(cos, {n}, "distance_forward cosine");
  check_shape(mse, {n}, "distance_forward mse");
  need_contiguous({&a, &b, &cos, &mse}, "distance_forward");
  ref::distance_forward(n, d, a.data(), b.data(), cos.data(), mse.data());
}

void distance_backward(const Tensor& a, const Tensor& b, const Tensor& dcos, const Tensor& dmse, Tensor* da, Tensor* db) {
  const auto [n, d] = pair_dims(a, b, "distance_backward");
  check_shape(dcos, {n}, "distance_backward cosine gradient");
  check_shape(dmse, {n}, "distance_backward mse gradient");
  if (da) check_shape(*da, a.shape(), "distance_backward gradient of a");
  if (db) check_shape(*db, a.shape(), "distance_backward gradient of b");
  need_contiguous({&a, &b, &dcos, &dmse, da, db}, "distance_backward");
  ref::distance_backward(n, d, a.data(), b.data(), dcos.data(), dmse.data(), ptr(da), ptr(db));
}

void release_scratch() {
#if MORPHOKD_HAS_ONEDNN
  onednn::release_scratch();
#endif
}

std::vector<std::string> onednn_kernels_used() {
#if MORPHOKD_HAS_ONEDNN
  return onednn::kernels_used();
#else
  return {};
#endif
}

std::string onednn_fpmath_mode() {
#if MORPHOKD_HAS_ONEDNN
  return onednn::fpmath_mode();
#else
  return "none";
#endif
}

}  // namespace morphokd::ops
