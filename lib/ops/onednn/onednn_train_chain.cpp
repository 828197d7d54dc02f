// ops::TrainingChain on oneDNN: per conv block a convolution and a batch normalization with the
// ReLU fused (its workspace remembers the signs), or without one the ReLU as the convolution's
// post-op (its output gives the signs); the max-pool with oneDNN's workspace (on AVX-512 by our
// kernels, maxpool_blocked.hpp, with oneDNN's bytes). Activations and gradients stay in the
// layouts these pick; a layout change is planned only where two primitives disagree. Every
// kernel is logged (ops::onednn_kernels_used).
//
// Memory: untapped conv-block outputs are not kept where backward can do without them; they
// are written into the gradient buffer their gradient will take, idle during forward.
// - A ReLU output that only feeds a max-pool: the pool's backward sends each gradient to its
//   window's winner, where the ReLU's output is the pool's, so the ReLU's gradient is taken on
//   the pool's output gradient, from the pool's output: the same numbers.
// - A batch norm's output that feeds a conv, whose weight gradient reads it: made again from
//   the kept conv output and batch statistics just before it is read (inference-mode batch
//   norm: the same bits as training mode's output on avx512_core, checked once by memcmp).
// - A conv whose output only feeds a max-pool runs with the pool a few images at a time, its
//   output into a scratch still in cache when the pool reads it (Parts below).
#include <algorithm>
#include <string>

#include "chain_steps.hpp"
#include "morphokd/error.hpp"
#include "onednn_ops.hpp"

namespace morphokd::onednn {

using namespace detail;
using dnnl::algorithm;
using dnnl::prop_kind;
using nf = dnnl::normalization_flags;

namespace {

const nf kBnFlags = nf::use_scale | nf::use_shift | nf::fuse_norm_relu;  // gamma, beta, then ReLU

// A plan takes its buffers from the chain's arena in a fixed order, each slot grown to the
// largest request: a plan for another batch size (an epoch's last) reuses that memory.
struct Slots {
  std::vector<Tensor>& arena;
  std::size_t next = 0;
  memory make(const memory::desc& d) {
    if (next == arena.size()) arena.emplace_back();
    Tensor& t = arena[next++];
    fit_capacity(t, floats_for(d.get_size()));
    return {d, ctx().eng, t.data()};
  }
};

// `have` seen in layout `want`: itself, or a planned copy that run() refreshes.
struct Conformed {
  memory have, copy;
  dnnl::reorder to_want;
  void plan(const memory& from, const memory::desc& want, Slots& slots) {
    have = from;
    if (from.get_desc() == want) return;
    copy = slots.make(want);
    to_want = dnnl::reorder(from, copy);
  }
  const memory& get() const { return to_want ? copy : have; }
  void run() {
    if (to_want) to_want.execute(ctx().strm, have, copy);
  }
};

memory user(const memory::dims& d) { return {plain(d), ctx().eng, DNNL_MEMORY_NONE}; }
// The layout of `d` among those that keep each image's values together, or undef.
tag image_major(const memory::desc& d) {
  for (tag t : {tag::aBcd16b, tag::acdb, tag::abcd, tag::aBcd8b})
    if (memory::desc(d.dims(), d.data_type(), t) == d) return t;
  return tag::undef;
}
// `images` of the batch `d` holds, in its layout (which image_major must know).
memory::desc part_of(const memory::desc& d, memory::dim images) {
  memory::dims dims = d.dims();
  dims[0] = images;
  return {dims, d.data_type(), image_major(d)};
}
// The conv's output a part may hold: what stays in the cores' caches for the pool.
constexpr std::size_t kPartBytes = std::size_t{2} << 20;
void bind(memory& m, const Tensor* t) { m.set_data_handle(const_cast<float*>(t->data())); }

}  // namespace

struct TrainPlan::Impl {
  struct Block {
    const ops::TrainBlock* spec;
    memory::dims out;
    memory act;  // the block's output, in its primitive's layout (over grads[dout]: in_grads)
    bool relu_at_pool = false;  // its ReLU's gradient taken at the pool above (relu_bwd there)
    dnnl::batch_normalization_forward bn_again;  // remakes the output for the conv above
    // relu_at_pool: this conv and the pool above run `images` at a time (0: the batch at once),
    // the conv's output into `scratch`. The same kernels on the same layouts, so the same bits.
    struct Parts {
      memory::dim images = 0;
      dnnl::convolution_forward conv;
      MaxPoolSteps pool;  // on a part's shape, forward only (empty: ours)
      memory src, scratch, dst, ws;  // views: into the batch's, moved part by part; scratch into part_scratch
    } parts;
    dnnl::convolution_forward::primitive_desc conv_pd;  // conv's, which the parts must match
    bool in_grads() const { return relu_at_pool || bn_again; }  // the output not kept
    // Which of grads[] holds the gradient of the block's output, and of its conv's output (in
    // place where relu_at_pool; a pool: its output's, the ReLU below taken). The input's
    // gradient goes to the other one.
    int dout = 0, dconv = 0;
    // conv block
    dnnl::convolution_forward conv;
    dnnl::convolution_backward_data conv_bwd_data;  // none for the first block
    dnnl::convolution_backward_weights conv_bwd_weights;
    Conformed src;                    // the block's input as the conv reads it
    Conformed src_w;                  // ... and as its weight gradient reads it
    memory w_user, b_user, dw_user, db_user;
    Conformed w_conv, w_conv_bwd_data;  // the weights as each convolution reads them, every step
    memory dw_blocked;                  // empty where the layout is the user's
    dnnl::reorder dw_to_user;
    memory::desc dconv_w_d, dconv_d_d, dsrc_d;  // gradient layouts the primitives want
    dnnl::reorder dconv_to_w, dconv_to_d, dsrc_to_below;     // where they disagree (rare)
    memory conv_out;                  // kept for the batch norm's backward
    dnnl::eltwise_backward relu_bwd;  // conv block without a batch norm; pool: the block below's
    dnnl::batch_normalization_forward bn;
    dnnl::batch_normalization_backward bn_bwd;
    memory gamma, beta, mean, var, dgamma, dbeta;
    memory bn_ws;
    // pool block
    MaxPoolSteps pool;
    memory pool_ws;
    memory pool_src;
    TapSteps tap;  // where tapped
  };
  std::vector<Block> blocks;
  memory input;
  memory grads[2];  // ping-pong gradient buffers, flat, viewed in each gradient's layout
  // Where two primitives disagree on a gradient's layout: the conv's output gradient as the
  // backward convolutions want it, and the data gradient before it moves to the block below.
  memory conform_dconv, conform_dsrc;
  memory part_scratch;  // the parts' conv outputs, one at a time; planned last: the other slots keep their order
};

TrainPlan::TrainPlan(const std::vector<ops::TrainBlock>& blocks, const Shape& in, std::span<const std::size_t> taps,
                     std::vector<Tensor>& arena)
    : impl_(std::make_unique<Impl>()) {
  Impl& p = *impl_;
  Slots slots{arena};
  memory::dims d(in.dims().begin(), in.dims().end());
  p.input = user(d);
  memory cur = p.input;
  std::size_t conform_dconv = 0, conform_dsrc = 0, part_scratch = 0;
  auto log = [&](const char* op, const memory::dims& a, const memory::dims& b, const std::string& impl) {
    log_kernel(key_of(op, {a, b}), impl);
  };
  // The ReLU's gradient from its output (positive exactly where its input was), in place.
  auto relu_bwd_from = [&](const memory::desc& d, const memory::dims& dims) {
    const auto epd = relu_backward_from_output(d);
    log("train_relu_bwd", dims, {}, epd.impl_info_str());
    return dnnl::eltwise_backward(epd);
  };
  // A conv (ReLU fused) and the pool above it, a part at a time where that keeps their kernels
  // and each image's values together; parts of one image are left out: oneDNN's forward conv
  // picks another kernel shape for a batch of 1.
  auto plan_parts = [&](Impl::Block& conv, const MaxPoolSteps& batch_pool) {
    const dnnl::pooling_forward::primitive_desc& pool = batch_pool.pd;
    const memory::desc x = conv.conv_pd.src_desc(), y = conv.conv_pd.dst_desc();
    const memory::dim n = x.dims()[0];
    memory::dim k = std::min<memory::dim>(n, static_cast<memory::dim>(kPartBytes / (y.get_size() / n)));
    while (k > 1 && n % k != 0) --k;
    if (k < 2 || k == n) return;
    for (const memory::desc& m : {x, y, pool.dst_desc(), pool.workspace_desc()})
      if (image_major(m) == tag::undef || part_of(m, k).get_size() * static_cast<std::size_t>(n / k) != m.get_size()) return;
    memory::dims xk = x.dims(), yk = y.dims(), wd = conv.conv_pd.weights_desc().dims();
    xk[0] = yk[0] = k;
    const auto cpd = conv_fwd_pd(xk, wd, yk, conv.spec->bias != nullptr, relu_post_op());
    const dnnl::pooling_forward::primitive_desc ppd(
        dnnl::pooling_forward::desc(prop_kind::forward_training, algorithm::pooling_max, cpd.dst_desc(),
                                    any(part_of(pool.dst_desc(), k).dims()), {2, 2}, {2, 2}, {0, 0}, {0, 0}),
        ctx().eng);
    if (cpd.impl_info_str() != conv.conv_pd.impl_info_str() || cpd.src_desc() != part_of(x, k) || cpd.dst_desc() != part_of(y, k) ||
        cpd.weights_desc() != conv.conv_pd.weights_desc() || ppd.impl_info_str() != pool.impl_info_str() ||
        ppd.dst_desc() != part_of(pool.dst_desc(), k) || ppd.workspace_desc() != part_of(pool.workspace_desc(), k))
      return;
    log("train_conv_pool_parts", xk, wd, cpd.impl_info_str());
    Impl::Block::Parts& parts = conv.parts;
    parts.images = k;
    parts.conv = dnnl::convolution_forward(cpd);
    parts.pool.pd = ppd;
    if (batch_pool.fwd) parts.pool.fwd = dnnl::pooling_forward(ppd);
    parts.src = memory(cpd.src_desc(), ctx().eng, DNNL_MEMORY_NONE);
    parts.scratch = memory(cpd.dst_desc(), ctx().eng, DNNL_MEMORY_NONE);
    part_scratch = std::max(part_scratch, cpd.dst_desc().get_size());
    parts.dst = memory(ppd.dst_desc(), ctx().eng, DNNL_MEMORY_NONE);
    parts.ws = memory(ppd.workspace_desc(), ctx().eng, DNNL_MEMORY_NONE);
  };
  p.blocks.resize(blocks.size());
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    Impl::Block& b = p.blocks[i];
    b.spec = &blocks[i];
    if (b.spec->is_pool()) {
      b.out = {d[0], d[1], d[2] / 2, d[3] / 2};
      b.pool = plan_max_pool(cur.get_desc());
      const auto& pd = b.pool.pd;
      log("train_maxpool", d, b.out, b.pool.fwd_impl);
      log("train_maxpool_bwd", d, b.out, b.pool.bwd_impl);
      b.pool_ws = slots.make(pd.workspace_desc());
      b.pool_src = cur;
      b.act = slots.make(pd.dst_desc());
      if (i > 0 && p.blocks[i - 1].relu_at_pool) {
        b.relu_bwd = relu_bwd_from(pd.dst_desc(), b.out);
        plan_parts(p.blocks[i - 1], b.pool);
      }
    } else {
      const ops::TrainBlock& s = *b.spec;
      const memory::dims wd = dims_of(*s.weight);
      const bool bias = s.bias != nullptr;
      b.out = {d[0], wd[0], d[2], d[3]};
      const auto pd = conv_fwd_pd(d, wd, b.out, bias, s.has_bn() ? dnnl::primitive_attr() : relu_post_op());
      const dnnl::convolution_backward_weights::primitive_desc wpd(
          dnnl::convolution_backward_weights::desc(algorithm::convolution_direct, any(d), any(wd),
                                                   bias ? plain({wd[0]}) : memory::desc(), any(b.out),
                                                   {1, 1}, {1, 1}, {1, 1}),
          ctx().eng, pd);
      log("train_conv", d, wd, pd.impl_info_str());
      log("train_conv_bwd_weights", d, wd, wpd.impl_info_str());
      b.conv_pd = pd;
      b.conv = dnnl::convolution_forward(pd);
      b.conv_bwd_weights = dnnl::convolution_backward_weights(wpd);
      b.src.plan(cur, pd.src_desc(), slots);
      b.src_w.plan(b.src.get(), wpd.src_desc(), slots);
      b.w_user = user(wd);
      b.b_user = user({wd[0]});
      b.dw_user = user(wd);
      b.db_user = user({wd[0]});
      b.w_conv.plan(b.w_user, pd.weights_desc(), slots);
      if (wpd.diff_weights_desc() != plain(wd)) {
        b.dw_blocked = slots.make(wpd.diff_weights_desc());
        b.dw_to_user = dnnl::reorder(b.dw_blocked, b.dw_user);
      }
      b.dconv_w_d = wpd.diff_dst_desc();
      b.dconv_to_w = change(pd.dst_desc(), b.dconv_w_d);
      if (i > 0) {
        const dnnl::convolution_backward_data::primitive_desc dpd(
            dnnl::convolution_backward_data::desc(algorithm::convolution_direct, any(d), any(wd), any(b.out), {1, 1}, {1, 1},
                                                  {1, 1}),
            ctx().eng, pd);
        log("train_conv_bwd_data", d, wd, dpd.impl_info_str());
        b.conv_bwd_data = dnnl::convolution_backward_data(dpd);
        b.w_conv_bwd_data.plan(dpd.weights_desc() == pd.weights_desc() ? b.w_conv.get() : b.w_user, dpd.weights_desc(), slots);
        b.dconv_d_d = dpd.diff_dst_desc();
        b.dsrc_d = dpd.diff_src_desc();
        b.dconv_to_d = change(pd.dst_desc(), b.dconv_d_d);
        b.dsrc_to_below = change(b.dsrc_d, cur.get_desc());
        if (b.dsrc_to_below) conform_dsrc = std::max(conform_dsrc, b.dsrc_d.get_size());
      }
      const bool tapped = std::find(taps.begin(), taps.end(), i) != taps.end();
      if (s.has_bn()) {
        b.conv_out = slots.make(pd.dst_desc());
        const dnnl::batch_normalization_forward::primitive_desc bpd(
            dnnl::batch_normalization_forward::desc(prop_kind::forward_training, pd.dst_desc(), s.eps, kBnFlags), ctx().eng);
        const dnnl::batch_normalization_backward::primitive_desc bbpd(
            dnnl::batch_normalization_backward::desc(prop_kind::backward, pd.dst_desc(), pd.dst_desc(), s.eps, kBnFlags),
            ctx().eng, bpd);
        log("train_batchnorm_relu", b.out, {}, bpd.impl_info_str());
        log("train_batchnorm_relu_bwd", b.out, {}, bbpd.impl_info_str());
        b.bn = dnnl::batch_normalization_forward(bpd);
        b.bn_bwd = dnnl::batch_normalization_backward(bbpd);
        b.bn_ws = slots.make(bpd.workspace_desc());
        for (memory* m : {&b.gamma, &b.beta, &b.mean, &b.var, &b.dgamma, &b.dbeta}) *m = user({wd[0]});
        // Below the top tap only: the walk below gives it a buffer of its own in forward.
        if (!tapped && i < taps.back() && !blocks[i + 1].is_pool()) {
          const dnnl::batch_normalization_forward::primitive_desc again(
              dnnl::batch_normalization_forward::desc(prop_kind::forward_inference, pd.dst_desc(), s.eps,
                                                      kBnFlags | nf::use_global_stats),
              ctx().eng);
          log("train_batchnorm_relu_again", b.out, {}, again.impl_info_str());
          b.bn_again = dnnl::batch_normalization_forward(again);
        }
      } else {
        b.relu_at_pool = !tapped && i + 1 < blocks.size() && blocks[i + 1].is_pool();
        if (!b.relu_at_pool) b.relu_bwd = relu_bwd_from(pd.dst_desc(), b.out);
      }
      b.act = b.in_grads() ? memory(pd.dst_desc(), ctx().eng, DNNL_MEMORY_NONE) : slots.make(pd.dst_desc());
      for (const memory::desc& g : {b.dconv_w_d, b.dconv_d_d})
        if (!g.is_zero() && g != pd.dst_desc()) conform_dconv = std::max(conform_dconv, g.get_size());
    }
    cur = b.act;
    d = b.out;
  }
  auto flat = [](std::size_t bytes) { return memory::desc({static_cast<memory::dim>(bytes / sizeof(float))}, dt::f32, tag::a); };
  // Backward from the top tap down, each gradient in the buffer the one it comes from is not
  // in. An untapped output forward writes into a gradient buffer goes where its gradient
  // will be (above the top tap: grads[0]), so each buffer is as large as its largest gradient.
  for (std::size_t i = taps.back() + 1; i-- > 0;) {
    Impl::Block& b = p.blocks[i];
    b.dconv = b.spec->is_pool() || b.relu_at_pool ? b.dout : 1 - b.dout;
    if (i > 0) p.blocks[i - 1].dout = 1 - b.dconv;
  }
  std::size_t most[2] = {0, 0};
  for (std::size_t i = 0; i < p.blocks.size(); ++i) {
    const Impl::Block& b = p.blocks[i];
    if (i <= taps.back() || b.in_grads())
      for (int k : {b.dout, b.dconv}) most[k] = std::max(most[k], b.act.get_desc().get_size());
  }
  for (int k : {0, 1}) p.grads[k] = slots.make(flat(most[k]));
  for (Impl::Block& b : p.blocks)  // the block above holds a handle to the same memory
    if (b.in_grads()) b.act.set_data_handle(p.grads[b.dout].get_data_handle());
  if (conform_dconv > 0) p.conform_dconv = slots.make(flat(conform_dconv));
  if (conform_dsrc > 0) p.conform_dsrc = slots.make(flat(conform_dsrc));
  if (part_scratch > 0) {
    p.part_scratch = slots.make(flat(part_scratch));
    for (Impl::Block& b : p.blocks)
      if (b.parts.images > 0) b.parts.scratch.set_data_handle(p.part_scratch.get_data_handle());
  }
  ctx().strm.wait();
}

TrainPlan::~TrainPlan() = default;

void TrainPlan::forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out) {
  Impl& p = *impl_;
  dnnl::stream& s = ctx().strm;
  p.input.set_data_handle(const_cast<float*>(x.data()));
  out.resize(taps.size());
  // The conv with `args` and the pool above it, part by part. (oneDNN's CPU stream has run a
  // primitive when execute returns: the views may move on.)
  auto run_parts = [&](Impl::Block& conv, Impl::Block& pool, std::unordered_map<int, memory>& args) {
    Impl::Block::Parts& parts = conv.parts;
    auto* src = static_cast<char*>(args.at(DNNL_ARG_SRC).get_data_handle());
    auto* dst = static_cast<char*>(pool.act.get_data_handle());
    auto* ws = static_cast<char*>(pool.pool_ws.get_data_handle());
    args[DNNL_ARG_SRC] = parts.src;
    args[DNNL_ARG_DST] = parts.scratch;
    const std::size_t src_bytes = parts.src.get_desc().get_size(), dst_bytes = parts.dst.get_desc().get_size(),
                      ws_bytes = parts.ws.get_desc().get_size();
    for (memory::dim k = 0; k < conv.out[0] / parts.images; ++k) {
      parts.src.set_data_handle(src + k * src_bytes);
      parts.dst.set_data_handle(dst + k * dst_bytes);
      parts.ws.set_data_handle(ws + k * ws_bytes);
      parts.conv.execute(s, args);
      max_pool_forward(parts.pool, parts.scratch, parts.dst, parts.ws);
    }
  };
  std::size_t next = 0;
  for (std::size_t i = 0; i < p.blocks.size(); ++i) {  // every block: their batch statistics move
    Impl::Block& b = p.blocks[i];
    const ops::TrainBlock& t = *b.spec;
    if (t.is_pool()) {
      if (i == 0 || p.blocks[i - 1].parts.images == 0)  // else run with the conv below
        max_pool_forward(b.pool, b.pool_src, b.act, b.pool_ws);
    } else {
      bind(b.w_user, t.weight);
      b.src.run();
      b.w_conv.run();
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, b.src.get()}, {DNNL_ARG_WEIGHTS, b.w_conv.get()},
                                           {DNNL_ARG_DST, t.has_bn() ? b.conv_out : b.act}};
      if (t.bias) {
        bind(b.b_user, t.bias);
        args[DNNL_ARG_BIAS] = b.b_user;
      }
      if (b.parts.images > 0)
        run_parts(b, p.blocks[i + 1], args);
      else
        b.conv.execute(s, args);
      if (t.has_bn()) {
        bind(b.gamma, t.gamma);
        bind(b.beta, t.beta);
        bind(b.mean, t.batch_mean);
        bind(b.var, t.batch_var);
        b.bn.execute(s, {{DNNL_ARG_SRC, b.conv_out},
                         {DNNL_ARG_SCALE, b.gamma},
                         {DNNL_ARG_SHIFT, b.beta},
                         {DNNL_ARG_DST, b.act},
                         {DNNL_ARG_MEAN, b.mean},
                         {DNNL_ARG_VARIANCE, b.var},
                         {DNNL_ARG_WORKSPACE, b.bn_ws}});
      }
    }
    if (next == taps.size() || taps[next] != i) continue;
    b.tap.output(b.act, b.out, out[next]);
    ++next;
  }
  s.wait();
}

void TrainPlan::backward(std::span<const std::size_t> taps, std::span<const Tensor> grads) {
  Impl& p = *impl_;
  dnnl::stream& s = ctx().strm;
  auto grad = [&](int k, const memory::desc& d) { return memory(d, ctx().eng, p.grads[k].get_data_handle()); };
  // The conv's output gradient as a backward convolution wants it: itself, or a copy.
  auto as = [&](const memory& g, dnnl::reorder& change, const memory::desc& want) {
    if (!change) return g;
    memory c(want, ctx().eng, p.conform_dconv.get_data_handle());
    change.execute(s, const_cast<memory&>(g), c);
    return c;
  };
  std::size_t next = taps.size();
  for (std::size_t i = taps.back() + 1; i-- > 0;) {
    Impl::Block& b = p.blocks[i];
    if (next > 0 && taps[next - 1] == i) {  // the loss's gradient enters here
      --next;
      b.tap.gradient(grads[next], grad(b.dout, b.act.get_desc()), next + 1 == taps.size());
    }
    const bool below = i > 0;  // a gradient to pass down (never the input's)
    if (b.spec->is_pool()) {
      if (!below) break;
      const memory g = grad(b.dout, b.act.get_desc());
      if (b.relu_bwd) b.relu_bwd.execute(s, {{DNNL_ARG_DST, b.act}, {DNNL_ARG_DIFF_DST, g}, {DNNL_ARG_DIFF_SRC, g}});
      const memory dx = grad(1 - b.dout, b.pool_src.get_desc());
      max_pool_backward(b.pool, g, b.pool_ws, dx);
      continue;
    }
    const ops::TrainBlock& t = *b.spec;
    const memory dact = grad(b.dout, b.act.get_desc()), dconv = grad(b.dconv, b.act.get_desc());  // the conv's output: the block's layout
    if (t.has_bn()) {
      bind(b.dgamma, t.gamma_grad);
      bind(b.dbeta, t.beta_grad);
      b.bn_bwd.execute(s, {{DNNL_ARG_SRC, b.conv_out},
                           {DNNL_ARG_MEAN, b.mean},
                           {DNNL_ARG_VARIANCE, b.var},
                           {DNNL_ARG_DIFF_DST, dact},
                           {DNNL_ARG_SCALE, b.gamma},
                           {DNNL_ARG_SHIFT, b.beta},
                           {DNNL_ARG_WORKSPACE, b.bn_ws},
                           {DNNL_ARG_DIFF_SRC, dconv},
                           {DNNL_ARG_DIFF_SCALE, b.dgamma},
                           {DNNL_ARG_DIFF_SHIFT, b.dbeta}});
    } else if (b.relu_bwd) {
      b.relu_bwd.execute(s, {{DNNL_ARG_DST, b.act}, {DNNL_ARG_DIFF_DST, dact}, {DNNL_ARG_DIFF_SRC, dconv}});
    }
    if (i > 0 && p.blocks[i - 1].bn_again) {  // into the buffer the input's gradient goes to next
      Impl::Block& u = p.blocks[i - 1];
      u.bn_again.execute(s, {{DNNL_ARG_SRC, u.conv_out},
                             {DNNL_ARG_SCALE, u.gamma},
                             {DNNL_ARG_SHIFT, u.beta},
                             {DNNL_ARG_MEAN, u.mean},
                             {DNNL_ARG_VARIANCE, u.var},
                             {DNNL_ARG_DST, u.act}});
    }
    b.src_w.run();
    bind(b.dw_user, t.weight_grad);
    const memory& dw = b.dw_to_user ? b.dw_blocked : b.dw_user;
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, b.src_w.get()}, {DNNL_ARG_DIFF_DST, as(dconv, b.dconv_to_w, b.dconv_w_d)}, {DNNL_ARG_DIFF_WEIGHTS, dw}};
    if (t.bias_grad) {
      bind(b.db_user, t.bias_grad);
      args[DNNL_ARG_DIFF_BIAS] = b.db_user;
    }
    b.conv_bwd_weights.execute(s, args);
    if (b.dw_to_user) b.dw_to_user.execute(s, b.dw_blocked, b.dw_user);
    if (!below) break;
    b.w_conv_bwd_data.run();
    const memory dsrc = grad(1 - b.dconv, p.blocks[i - 1].act.get_desc());
    // In the layout below, or in its own and then changed
    const memory into = b.dsrc_to_below ? memory(b.dsrc_d, ctx().eng, p.conform_dsrc.get_data_handle()) : dsrc;
    b.conv_bwd_data.execute(
        s, {{DNNL_ARG_DIFF_DST, as(dconv, b.dconv_to_d, b.dconv_d_d)}, {DNNL_ARG_WEIGHTS, b.w_conv_bwd_data.get()}, {DNNL_ARG_DIFF_SRC, into}});
    if (b.dsrc_to_below) b.dsrc_to_below.execute(s, const_cast<memory&>(into), const_cast<memory&>(dsrc));
  }
  s.wait();
}

}  // namespace morphokd::onednn
