// Steps the oneDNN chains with a backward pass share (onednn_train_chain.cpp,
// onednn_gradient_chain.cpp): layout changes, the max-pool with its workspace, the ReLU's
// gradient from its output.
#pragma once
#include <string>

#include "context.hpp"
#include "maxpool_blocked.hpp"

namespace morphokd::onednn::detail {

// A layout change between descriptors, or none where they agree.
inline dnnl::reorder change(const memory::desc& from, const memory::desc& to) {
  if (from == to) return {};
  return dnnl::reorder(dnnl::reorder::primitive_desc(ctx().eng, from, ctx().eng, to));
}

// The 2x2 max-pool of `src` keeping its workspace, forward and backward: our kernels where
// they apply (both primitives empty), else oneDNN's. Gradients in the layouts of src and dst.
struct MaxPoolSteps {
  dnnl::pooling_forward::primitive_desc pd;  // its dst and workspace descriptors
  dnnl::pooling_forward fwd;
  dnnl::pooling_backward bwd;
  std::string fwd_impl, bwd_impl;  // for the kernel log
};
MaxPoolSteps plan_max_pool(const memory::desc& src);

inline void max_pool_forward(const MaxPoolSteps& pool, const memory& x, const memory& y, const memory& ws) {
  if (pool.fwd)
    pool.fwd.execute(ctx().strm, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}, {DNNL_ARG_WORKSPACE, ws}});
  else
    maxpool16_forward(x, y, ws);
}
inline void max_pool_backward(const MaxPoolSteps& pool, const memory& dy, const memory& ws, const memory& dx) {
  if (pool.bwd)
    pool.bwd.execute(ctx().strm, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WORKSPACE, ws}, {DNNL_ARG_DIFF_SRC, dx}});
  else
    maxpool16_backward(dy, ws, dx);
}

// A tapped output's trips to and from the caller's NCHW tensors, each reorder made on first use.
struct TapSteps {
  memory user;  // the caller's tensor, rebound at each trip
  dnnl::reorder to_plain, grad_in, grad_add;
  // out (reshaped to `dims`) = act.
  void output(const memory& act, const memory::dims& dims, Tensor& out);
  // into = grad where it is the first gradient to enter, else into += grad.
  void gradient(const Tensor& grad, const memory& into, bool first);
};

// The ReLU's gradient from its output (positive exactly where its input was); runs in place.
dnnl::eltwise_backward::primitive_desc relu_backward_from_output(const memory::desc& d);

}  // namespace morphokd::onednn::detail
