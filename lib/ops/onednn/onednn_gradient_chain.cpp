// ops::GradientChain on oneDNN: per conv stage the module path's forward kernel with the ReLU
// as a post-op (its output gives the ReLU's gradient) and its data-gradient kernel; the
// max-pool with its workspace (ours on AVX-512, maxpool_blocked.hpp). Stage outputs are kept
// in their primitives' layouts, the gradients in two ping-pong buffers; a layout change is
// planned only where two primitives disagree. Every kernel is logged (ops::onednn_kernels_used).
//
// An untapped conv + ReLU output that only feeds a max-pool is not kept (one scratch serves
// them all): the pool's backward sends each gradient to its window's winner, whose ReLU
// output is the pool's, so the ReLU's gradient is taken on the pool's output gradient, from
// the pool's output, a quarter of the work: the same numbers.
#include <algorithm>
#include <string>

#include "chain_steps.hpp"
#include "morphokd/error.hpp"
#include "onednn_ops.hpp"

namespace morphokd::onednn {

using namespace detail;

struct GradPlan::Impl {
  struct Stage {
    memory::dims out;
    memory::desc below;  // the input's layout here, the one its gradient goes to
    memory act;          // the stage's output (a conv's after its ReLU)
    // conv
    dnnl::reorder to_src;  // at the input, where the conv wants another layout
    memory src;            // the input as the conv reads it
    dnnl::convolution_forward conv;
    dnnl::eltwise_forward relu;  // where the conv's kernel takes no post-op: in place after it
    dnnl::eltwise_backward relu_bwd;  // a pool: the ReLU's below it (the conv's output not kept)
    memory weights, weights_bwd, bias;  // reordered once: the network is frozen
    dnnl::convolution_backward_data conv_bwd_data;
    memory::desc dy_d, dx_d;          // the gradient layouts it wants
    dnnl::reorder dy_change, dx_change;  // where they differ from the output's and below's (rare)
    // pool
    MaxPoolSteps pool;
    memory ws;
    TapSteps tap;  // where tapped
  };
  std::vector<Stage> stages;
  std::vector<std::size_t> taps;  // planned for
  memory input, dx_user;
  std::vector<Tensor> storage;  // every buffer below, on planned cache lines
  memory grads[2];              // flat, viewed in each gradient's layout
  memory conform_dy, conform_dx;
  memory pool_feed;             // the outputs not kept, one at a time
};

GradPlan::GradPlan(const std::vector<ops::ChainStage>& stages, const Shape& in, std::span<const std::size_t> taps,
                   ops::ConvAlgorithm alg)
    : impl_(std::make_unique<Impl>()) {
  Impl& p = *impl_;
  p.taps.assign(taps.begin(), taps.end());
  auto own = [&](const memory::desc& d) {
    p.storage.emplace_back();
    fit_capacity(p.storage.back(), floats_for(d.get_size()));
    return memory(d, ctx().eng, p.storage.back().data());
  };
  memory::dims d(in.dims().begin(), in.dims().end());
  p.input = memory(plain(d), ctx().eng, DNNL_MEMORY_NONE);
  p.dx_user = memory(plain(d), ctx().eng, DNNL_MEMORY_NONE);
  memory cur = p.input;
  std::size_t grad_bytes = 0, conform_dy = 0, conform_dx = 0, pool_feed = 0;
  std::vector<bool> at_pool(stages.size(), false);  // a conv + ReLU output that only feeds a pool
  for (std::size_t i = 0; i + 1 < stages.size(); ++i)
    at_pool[i] = stages[i].weight && stages[i].relu && !stages[i + 1].weight && std::ranges::find(taps, i) == taps.end();
  auto log = [&](const char* op, const memory::dims& out, const std::string& impl) {
    log_kernel(key_of(op, {d, out}, static_cast<std::uint64_t>(alg)), impl);
  };
  p.stages.resize(stages.size());
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const ops::ChainStage& st = stages[i];
    Impl::Stage& s = p.stages[i];
    s.below = cur.get_desc();
    if (!st.weight) {
      s.out = {d[0], d[1], d[2] / 2, d[3] / 2};
      s.pool = plan_max_pool(cur.get_desc());
      log("grad_maxpool", s.out, s.pool.fwd_impl);
      log("grad_maxpool_bwd", s.out, s.pool.bwd_impl);
      s.src = cur;
      s.ws = own(s.pool.pd.workspace_desc());
      s.act = own(s.pool.pd.dst_desc());
      if (i > 0 && at_pool[i - 1]) {
        const auto rpd = relu_backward_from_output(s.pool.pd.dst_desc());
        log("grad_relu_bwd_at_pool", s.out, rpd.impl_info_str());
        s.relu_bwd = dnnl::eltwise_backward(rpd);
      }
    } else {
      const memory::dims wd = dims_of(*st.weight);
      s.out = {d[0], wd[0], d[2], d[3]};
      const auto pd = conv_fwd_pd_matching(d, wd, s.out, st.bias != nullptr, st.relu, alg);
      const bool fused = st.relu && pd.get_primitive_attr().get_post_ops().len() == 1;
      log(fused ? "grad_conv_relu" : "grad_conv", s.out, pd.impl_info_str());
      s.conv = dnnl::convolution_forward(pd);
      s.src = cur;
      if (pd.src_desc() != cur.get_desc()) {
        s.src = own(pd.src_desc());
        s.to_src = dnnl::reorder(cur, s.src);
      }
      const memory user_w = wrap(*st.weight);
      s.weights = own(pd.weights_desc());
      dnnl::reorder(user_w, s.weights).execute(ctx().strm, const_cast<memory&>(user_w), s.weights);
      if (st.bias) s.bias = wrap(*st.bias);
      if (at_pool[i]) {
        s.act = memory(pd.dst_desc(), ctx().eng, DNNL_MEMORY_NONE);
        pool_feed = std::max(pool_feed, pd.dst_desc().get_size());
      } else {
        s.act = own(pd.dst_desc());
      }
      if (st.relu && !fused)
        s.relu = dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(
            dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::eltwise_relu, pd.dst_desc(), 0.f, 0.f),
            ctx().eng));
      if (st.relu && !at_pool[i]) {
        const auto rpd = relu_backward_from_output(pd.dst_desc());
        log("grad_relu_bwd", s.out, rpd.impl_info_str());
        s.relu_bwd = dnnl::eltwise_backward(rpd);
      }
      const auto dpd = conv_bwd_data_pd_for(d, wd, s.out, alg);
      log("grad_conv_bwd_data", s.out, dpd.impl_info_str());
      s.conv_bwd_data = dnnl::convolution_backward_data(dpd);
      s.weights_bwd = s.weights;
      if (dpd.weights_desc() != pd.weights_desc()) {
        s.weights_bwd = own(dpd.weights_desc());
        dnnl::reorder(user_w, s.weights_bwd).execute(ctx().strm, const_cast<memory&>(user_w), s.weights_bwd);
      }
      s.dy_d = dpd.diff_dst_desc();
      s.dx_d = dpd.diff_src_desc();
      s.dy_change = change(pd.dst_desc(), s.dy_d);
      s.dx_change = change(s.dx_d, s.below);
      if (s.dy_change) conform_dy = std::max(conform_dy, s.dy_d.get_size());
      if (s.dx_change) conform_dx = std::max(conform_dx, s.dx_d.get_size());
    }
    grad_bytes = std::max(grad_bytes, s.act.get_desc().get_size());
    cur = s.act;
    d = s.out;
  }
  auto flat = [](std::size_t bytes) { return memory::desc({static_cast<memory::dim>(bytes / sizeof(float))}, dt::f32, tag::a); };
  for (memory& g : p.grads) g = own(flat(grad_bytes));
  if (conform_dy > 0) p.conform_dy = own(flat(conform_dy));
  if (conform_dx > 0) p.conform_dx = own(flat(conform_dx));
  if (pool_feed > 0) {
    p.pool_feed = own(flat(pool_feed));
    for (std::size_t i = 0; i < stages.size(); ++i)
      if (at_pool[i]) p.stages[i].act.set_data_handle(p.pool_feed.get_data_handle());
  }
  ctx().strm.wait();
}

GradPlan::~GradPlan() = default;

void GradPlan::forward(const Tensor& x, std::vector<Tensor>& out) {
  Impl& p = *impl_;
  const std::vector<std::size_t>& taps = p.taps;
  dnnl::stream& strm = ctx().strm;
  p.input.set_data_handle(const_cast<float*>(x.data()));
  out.resize(taps.size());
  std::size_t next = 0;
  for (std::size_t i = 0; i < p.stages.size(); ++i) {
    Impl::Stage& s = p.stages[i];
    const memory& below = i > 0 ? p.stages[i - 1].act : p.input;
    if (s.conv) {
      if (s.to_src) s.to_src.execute(strm, const_cast<memory&>(below), s.src);
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, s.src}, {DNNL_ARG_WEIGHTS, s.weights}, {DNNL_ARG_DST, s.act}};
      if (s.bias) args[DNNL_ARG_BIAS] = s.bias;
      s.conv.execute(strm, args);
      if (s.relu) s.relu.execute(strm, {{DNNL_ARG_SRC, s.act}, {DNNL_ARG_DST, s.act}});
    } else {
      max_pool_forward(s.pool, below, s.act, s.ws);
    }
    if (next == taps.size() || taps[next] != i) continue;
    s.tap.output(s.act, s.out, out[next]);
    ++next;
  }
  strm.wait();
}

void GradPlan::backward(std::span<const Tensor> grads, Tensor& dx) {
  Impl& p = *impl_;
  const std::vector<std::size_t>& taps = p.taps;
  dnnl::stream& strm = ctx().strm;
  auto grad = [&](int k, const memory::desc& d) { return memory(d, ctx().eng, p.grads[k].get_data_handle()); };
  p.dx_user.set_data_handle(dx.data());
  int cur = 0;  // the buffer holding the gradient of stage i's output
  std::size_t next = taps.size();
  for (std::size_t i = taps.back() + 1; i-- > 0;) {
    Impl::Stage& s = p.stages[i];
    memory g = grad(cur, s.act.get_desc());
    if (next > 0 && taps[next - 1] == i) {  // a gradient enters here: the first, or added
      --next;
      s.tap.gradient(grads[next], g, next + 1 == taps.size());
    }
    const memory into = i > 0 ? grad(1 - cur, s.below) : p.dx_user;
    if (s.relu_bwd) s.relu_bwd.execute(strm, {{DNNL_ARG_DST, s.act}, {DNNL_ARG_DIFF_DST, g}, {DNNL_ARG_DIFF_SRC, g}});
    if (!s.conv) {
      max_pool_backward(s.pool, g, s.ws, into);
    } else {
      memory dy = g, dsrc = into;
      if (s.dy_change) {
        dy = memory(s.dy_d, ctx().eng, p.conform_dy.get_data_handle());
        s.dy_change.execute(strm, g, dy);
      }
      if (s.dx_change) dsrc = memory(s.dx_d, ctx().eng, p.conform_dx.get_data_handle());
      s.conv_bwd_data.execute(strm, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, s.weights_bwd}, {DNNL_ARG_DIFF_SRC, dsrc}});
      if (s.dx_change) s.dx_change.execute(strm, dsrc, const_cast<memory&>(into));
    }
    cur = 1 - cur;
  }
  strm.wait();
}

}  // namespace morphokd::onednn
