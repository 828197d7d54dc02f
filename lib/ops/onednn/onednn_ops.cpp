// oneDNN 2.6 primitives. Each (op, shape) gets its primitive descriptors and primitives
// built once and cached; convolutions let oneDNN pick the layout (format_tag::any) and
// reorder only where its choice differs from our NCHW buffers; forward descriptors are the
// hints of the backward ones; backward_data and backward_weights are separate primitives.
// Calls are expected from one thread at a time (the parallelism is inside oneDNN).
#include "onednn_ops.hpp"

#include <atomic>
#include <bit>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "context.hpp"
#include "../reference/kernels.hpp"
#include "core/cpu_features.hpp"
#include "../winograd_chunks.hpp"

#include "morphokd/error.hpp"
#include "morphokd/runtime.hpp"

namespace morphokd::onednn {

namespace detail {

Context::Context() {
  // Strict fp32 math: no implicit down-conversion, whatever the environment says.
  dnnl::set_default_fpmath_mode(dnnl::fpmath_mode::strict);
  eng = dnnl::engine(dnnl::engine::kind::cpu, 0);
  strm = dnnl::stream(eng);
}

Context& ctx() {
  static Context c;
  return c;
}

memory::dims dims_of(const Tensor& t) { return memory::dims(t.shape().dims().begin(), t.shape().dims().end()); }

memory::desc plain(const memory::dims& d) {
  static const tag tags[] = {tag::undef, tag::a, tag::ab, tag::abc, tag::abcd};
  return {d, dt::f32, tags[d.size()]};
}
memory::desc any(const memory::dims& d, dt type) { return {d, type, tag::any}; }

memory wrap(const Tensor& t) { return {plain(dims_of(t)), ctx().eng, const_cast<float*>(t.data())}; }
memory wrap(const Tensor& t, const memory::dims& d) { return {plain(d), ctx().eng, const_cast<float*>(t.data())}; }

void log_kernel(const std::string& key, const std::string& impl) {
  std::lock_guard<std::mutex> lock(ctx().mu);
  ctx().kernels[key] = impl;
}

std::string key_of(const char* op, std::initializer_list<memory::dims> shapes, std::uint64_t flags) {
  std::ostringstream s;
  s << op << ':' << flags;
  for (const auto& d : shapes) {
    s << '[';
    for (auto v : d) s << v << ',';
    s << ']';
  }
  return s.str();
}

dnnl::primitive_attr relu_post_op() {
  dnnl::post_ops po;
  po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  return attr;
}

const memory::dims kStride{1, 1}, kPad{1, 1};

namespace {
// VGG's wide 16x16 and 8x8 layers: there, on a Zen 5, brgconv ran 6-14 % faster than the jit
// kernel oneDNN picks for training; at 4x4 and 32x32 and on the students' 16-channel layers as
// fast or slower. On an Intel Xeon (AMX) it ran 2-14 % slower at those same layers, so AMD
// only. A rule of the CPU and the shape, not the batch: an image's bits stay batch-free.
bool prefers_brgconv(memory::dim in_channels, memory::dim out_channels, memory::dim height) {
  return morphokd::detail::cpu_is_amd() && in_channels >= 128 && out_channels >= 128 && (height == 8 || height == 16);
}
}  // namespace

dnnl::convolution_forward::primitive_desc conv_fwd_pd(const memory::dims& x, const memory::dims& w,
                                                      const memory::dims& y, bool bias, const dnnl::primitive_attr& attr,
                                                      dt type, dnnl::prop_kind prop, dnnl::algorithm alg) {
  const memory::desc b = bias ? plain({w[0]}) : memory::desc();
  auto make = [&](tag act) {
    const memory::desc xd(x, type, act), yd(y, type, act);
    return dnnl::convolution_forward::primitive_desc(
        dnnl::convolution_forward::desc(prop, alg, xd, any(w, type), b, yd, kStride, kPad, kPad), attr, ctx().eng);
  };
  if (type == dt::f32 && alg == dnnl::algorithm::convolution_direct && prefers_brgconv(w[1], w[0], x[2])) {
    auto pd = make(tag::nhwc);
    if (std::string(pd.impl_info_str()).rfind("brgconv", 0) == 0) return pd;
  }
  return make(tag::any);
}

// make(algorithm) for Winograd where asked and oneDNN has a kernel for the shape, else direct.
// Not for a first layer of 1 or 3 channels: there the transforms outweigh the products saved
// (VGG16's 1-channel first conv on an Intel Xeon with AMX: Winograd 27 ms a batch of 64,
// direct 5 ms).
// oneDNN fixes a Winograd kernel's schedule from the thread count the process first plans it
// at, and on some CPUs that changes the order of the sums (256->256 channels at 16x16 on an
// Intel Xeon with AMX: one set of bits at 1-2 threads, another at 3-4). Deterministic mode
// plans it at one thread; the primitive still runs on all of them, with the one-thread bits.
constexpr memory::dim kWinogradMinChannels = 16;
template <class Make>
auto winograd_or_direct(ops::ConvAlgorithm alg, memory::dim in_channels, Make make) {
  if (alg == ops::ConvAlgorithm::winograd && in_channels >= kWinogradMinChannels) try {
      if (!deterministic()) return make(dnnl::algorithm::convolution_winograd);
      struct Restore {
        int threads;
        ~Restore() { set_num_threads(threads); }
      } restore{num_threads()};
      set_num_threads(1);
      return make(dnnl::algorithm::convolution_winograd);
    } catch (const dnnl::error&) {
    }
  return make(dnnl::algorithm::convolution_direct);
}

dnnl::convolution_forward::primitive_desc conv_fwd_pd_for(const memory::dims& x, const memory::dims& w,
                                                          const memory::dims& y, bool bias, ops::ConvAlgorithm alg,
                                                          const dnnl::primitive_attr& attr) {
  return winograd_or_direct(alg, x[1], [&](dnnl::algorithm a) {
    return conv_fwd_pd(x, w, y, bias, attr, dt::f32, dnnl::prop_kind::forward_training, a);
  });
}

dnnl::convolution_forward::primitive_desc conv_fwd_pd_matching(const memory::dims& x, const memory::dims& w,
                                                               const memory::dims& y, bool bias, bool relu,
                                                               ops::ConvAlgorithm alg) {
  auto plain_pd = conv_fwd_pd_for(x, w, y, bias, alg);
  if (!relu) return plain_pd;
  auto pd = conv_fwd_pd_for(x, w, y, bias, alg, relu_post_op());
  do {
    if (pd.impl_info_str() == plain_pd.impl_info_str() && pd.src_desc() == plain_pd.src_desc() &&
        pd.weights_desc() == plain_pd.weights_desc() && pd.dst_desc() == plain_pd.dst_desc())
      return pd;
  } while (pd.next_impl());
  return plain_pd;
}

dnnl::convolution_backward_data::primitive_desc conv_bwd_data_pd_for(const memory::dims& dx, const memory::dims& w,
                                                                     const memory::dims& dy, ops::ConvAlgorithm alg) {
  return winograd_or_direct(alg, dx[1], [&](dnnl::algorithm a) {
    return dnnl::convolution_backward_data::primitive_desc(
        dnnl::convolution_backward_data::desc(a, any(dx), any(w), any(dy), kStride, kPad, kPad), ctx().eng,
        conv_fwd_pd(dx, w, dy, false, {}, dt::f32, dnnl::prop_kind::forward_training, a));
  });
}

}  // namespace detail

namespace {

using namespace detail;
using dnnl::algorithm;
using dnnl::prop_kind;

// One cache per entry type; the entry is built by `make` on first use of `key`.
template <class Entry, class Make>
Entry& cached(const std::string& key, Make make) {
  static std::map<std::string, std::unique_ptr<Entry>> cache;
  std::lock_guard<std::mutex> lock(ctx().mu);
  auto it = cache.find(key);
  if (it == cache.end()) {
    it = cache.emplace(key, std::make_unique<Entry>(make())).first;
    ctx().kernels[key] = it->second->pd.impl_info_str();
  }
  return *it->second;
}

// Scratch shared by every op (calls run one at a time): one grow-only buffer per role, so
// it follows the largest call. A call's layout changes share one role, carved in pieces,
// rather than one role each: their sum per call is far below the sum of each role's largest.
// On pages of their own (huge where the kernel grants them): the teacher's layout changes
// move up to 67 MB a call.
enum Slot { kStage, kChunkIn, kChunkOut };
Tensor g_scratch[3];
void* scratch(Slot slot, std::size_t bytes) {
  Tensor& b = g_scratch[slot];
  if (static_cast<std::size_t>(b.numel()) * sizeof(float) < bytes) b = Tensor();  // the old one freed first
  fit_capacity(b, floats_for(bytes));
  return b.data();
}

// A call's two inputs and one output in the primitive's layouts: the user's buffer where the
// layout matches, else a piece of scratch (inputs reordered into it).
struct Staged {
  memory in0, in1, out;
};
Staged stage(const memory& in0, const memory::desc& want0, const memory& in1, const memory::desc& want1,
             const memory& out, const memory::desc& have) {
  auto room = [](const memory& user, const memory::desc& d) { return user.get_desc() == d ? 0 : lines_for(d.get_size()); };
  auto* next = static_cast<CacheLine*>(scratch(kStage, sizeof(CacheLine) * (room(in0, want0) + room(in1, want1) + room(out, have))));
  auto place = [&](const memory& user, const memory::desc& d) {
    if (user.get_desc() == d) return user;
    memory staged(d, ctx().eng, next);
    next += lines_for(d.get_size());
    return staged;
  };
  Staged s{place(in0, want0), place(in1, want1), place(out, have)};
  for (const auto& [user, staged] : {std::pair{in0, s.in0}, std::pair{in1, s.in1}})
    if (staged.get() != user.get()) dnnl::reorder(user, staged).execute(ctx().strm, const_cast<memory&>(user), const_cast<memory&>(staged));
  return s;
}
void finish_out(const memory& staged, const memory& user) {
  if (staged.get() != user.get()) dnnl::reorder(staged, user).execute(ctx().strm, const_cast<memory&>(staged), const_cast<memory&>(user));
}

struct ConvFwd {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
};

struct ConvBwdData {
  dnnl::convolution_backward_data::primitive_desc pd;
  dnnl::convolution_backward_data prim;
};

struct ConvBwdWeights {
  dnnl::convolution_backward_weights::primitive_desc pd;
  dnnl::convolution_backward_weights prim;
};

}  // namespace

void release_scratch() {
  for (Tensor& b : g_scratch) b = Tensor();
}

std::vector<std::string> kernels_used() {
  std::lock_guard<std::mutex> lock(ctx().mu);
  std::vector<std::string> out;
  for (const auto& [k, v] : ctx().kernels) out.push_back(k + " -> " + v);
  return out;
}

std::string fpmath_mode() {
  ctx();  // the context sets the mode
  switch (dnnl::get_default_fpmath_mode()) {
    case dnnl::fpmath_mode::strict: return "strict";
    case dnnl::fpmath_mode::bf16: return "bf16";
    case dnnl::fpmath_mode::f16: return "f16";
    case dnnl::fpmath_mode::any: return "any";
  }
  return "unknown";
}

namespace {

void conv_forward_run(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y, ops::ConvAlgorithm alg) {
  const auto xd = dims_of(x), wd = dims_of(w), yd = dims_of(y);
  const bool wino = alg == ops::ConvAlgorithm::winograd;
  const std::uint64_t flags = (b != nullptr) | wino << 1 | (wino && deterministic()) << 2;  // planned per mode
  auto& e = cached<ConvFwd>(key_of("conv_fwd", {xd, wd}, flags), [&] {
    auto pd = conv_fwd_pd_for(xd, wd, yd, b != nullptr, alg);
    return ConvFwd{pd, dnnl::convolution_forward(pd)};
  });
  const memory ux = wrap(x), uw = wrap(w), uy = wrap(y);
  const Staged s = stage(ux, e.pd.src_desc(), uw, e.pd.weights_desc(), uy, e.pd.dst_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, s.in0}, {DNNL_ARG_WEIGHTS, s.in1}, {DNNL_ARG_DST, s.out}};
  if (b) args[DNNL_ARG_BIAS] = wrap(*b);
  e.prim.execute(ctx().strm, args);
  finish_out(s.out, uy);
  ctx().strm.wait();
}

// run(in_k, out_k) on chunks of exactly kWinogradChunk images, the last zero-padded (ops.hpp).
template <class Run>
void in_winograd_chunks(const Tensor& in, Tensor& out, Run run) {
  const Shape os = out.shape().with_batch(ops::kWinogradChunk);
  const Index out_image = os.numel() / ops::kWinogradChunk;
  auto pad = [](const Shape& is) { return Tensor::wrap(static_cast<float*>(scratch(kChunkIn, is.numel() * sizeof(float))), is); };
  ops::for_each_winograd_chunk(in, pad, [&](const Tensor& in_k, Index first, Index k) {
    float* dst = out.data() + first * out_image;
    const bool whole = k == ops::kWinogradChunk;
    Tensor out_k = Tensor::wrap(whole ? dst : static_cast<float*>(scratch(kChunkOut, os.numel() * sizeof(float))), os);
    run(in_k, out_k);
    if (!whole) std::copy_n(out_k.data(), k * out_image, dst);
  });
}

void conv_backward_data_run(const Tensor& dy, const Tensor& w, Tensor& dx, ops::ConvAlgorithm alg) {
  const auto dyd = dims_of(dy), wd = dims_of(w), dxd = dims_of(dx);
  const bool wino = alg == ops::ConvAlgorithm::winograd;
  auto& e = cached<ConvBwdData>(key_of("conv_bwd_data", {dxd, wd}, wino | (wino && deterministic()) << 1), [&] {
    const auto pd = conv_bwd_data_pd_for(dxd, wd, dyd, alg);
    return ConvBwdData{pd, dnnl::convolution_backward_data(pd)};
  });
  const memory udy = wrap(dy), uw = wrap(w), udx = wrap(dx);
  const Staged s = stage(udy, e.pd.diff_dst_desc(), uw, e.pd.weights_desc(), udx, e.pd.diff_src_desc());
  e.prim.execute(ctx().strm, {{DNNL_ARG_DIFF_DST, s.in0}, {DNNL_ARG_WEIGHTS, s.in1}, {DNNL_ARG_DIFF_SRC, s.out}});
  finish_out(s.out, udx);
  ctx().strm.wait();
}
}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y, ops::ConvAlgorithm alg) {
  if (alg == ops::ConvAlgorithm::direct) return conv_forward_run(x, w, b, y, alg);
  in_winograd_chunks(x, y, [&](const Tensor& xk, Tensor& yk) { conv_forward_run(xk, w, b, yk, alg); });
}

void conv2d_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, ops::ConvAlgorithm alg) {
  if (alg == ops::ConvAlgorithm::direct) return conv_backward_data_run(dy, w, dx, alg);
  in_winograd_chunks(dy, dx, [&](const Tensor& dyk, Tensor& dxk) { conv_backward_data_run(dyk, w, dxk, alg); });
}

void conv2d_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db) {
  const auto xd = dims_of(x), dyd = dims_of(dy), wd = dims_of(dw);
  const bool bias = db != nullptr;
  auto& e = cached<ConvBwdWeights>(key_of("conv_bwd_weights", {xd, wd}, bias), [&] {
    const auto hint = conv_fwd_pd(xd, wd, dyd, bias);
    const memory::desc b = bias ? plain({wd[0]}) : memory::desc();
    dnnl::convolution_backward_weights::primitive_desc pd(
        dnnl::convolution_backward_weights::desc(algorithm::convolution_direct, any(xd), any(wd), b, any(dyd),
                                                 kStride, kPad, kPad),
        ctx().eng, hint);
    return ConvBwdWeights{pd, dnnl::convolution_backward_weights(pd)};
  });
  const memory ux = wrap(x), udy = wrap(dy), udw = wrap(dw);
  const Staged s = stage(ux, e.pd.src_desc(), udy, e.pd.diff_dst_desc(), udw, e.pd.diff_weights_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, s.in0}, {DNNL_ARG_DIFF_DST, s.in1}, {DNNL_ARG_DIFF_WEIGHTS, s.out}};
  if (db) args[DNNL_ARG_DIFF_BIAS] = wrap(*db);
  e.prim.execute(ctx().strm, args);
  finish_out(s.out, udw);
  ctx().strm.wait();
}

namespace {
// ref::EigenProduct's contract by oneDNN's sgemm. Called inside the reference kernel's
// parallel loop, where oneDNN on OpenMP does not start threads of its own.
static_assert(DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP, "a oneDNN built for OpenMP: its sgemm must run on the calling thread");
struct SgemmProduct {
  std::atomic<int>* status;
  void operator()(const float* dy_n, const float* col, Index co, Index k, Index hw, bool first, float* p) const {
    const dnnl_status_t s = dnnl_sgemm('N', 'T', k, co, hw, 1.f, col, hw, dy_n, hw, first ? 0.f : 1.f, p, co);
    if (s != dnnl_success) status->store(static_cast<int>(s));
  }
};
}  // namespace

void conv2d_backward_weights_fixed_order(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db) {
  const ref::ConvDims d{x.dim(0), x.dim(1), dw.dim(0), x.dim(2), x.dim(3)};
  std::atomic<int> status{dnnl_success};
  ref::conv2d_backward_weights(d, x.data(), dy.data(), dw.data(), db ? db->data() : nullptr, SgemmProduct{&status});
  if (status.load() != dnnl_success) fail("conv2d_backward_weights: dnnl_sgemm failed with status " + std::to_string(status.load()));
  log_kernel(key_of("conv_bwd_weights_fixed_order", {dims_of(x), dims_of(dw)}), "im2col + dnnl_sgemm per image, one thread per image group");
}

namespace {
struct EltFwd {
  dnnl::eltwise_forward::primitive_desc pd;
  dnnl::eltwise_forward prim;
};
struct EltBwd {
  dnnl::eltwise_backward::primitive_desc pd;
  dnnl::eltwise_backward prim;
};
dnnl::eltwise_forward::primitive_desc relu_fwd_pd(const memory::desc& md) {
  return {dnnl::eltwise_forward::desc(prop_kind::forward_training, algorithm::eltwise_relu, md, 0.f, 0.f), ctx().eng};
}
}  // namespace

// Elementwise ops see any tensor as one flat vector.
void relu_forward(const Tensor& x, Tensor& y) {
  const memory::dims flat{x.numel()};
  auto& e = cached<EltFwd>(key_of("relu_fwd", {flat}), [&] {
    auto pd = relu_fwd_pd(plain(flat));
    return EltFwd{pd, dnnl::eltwise_forward(pd)};
  });
  e.prim.execute(ctx().strm, {{DNNL_ARG_SRC, wrap(x, flat)}, {DNNL_ARG_DST, wrap(y, flat)}});
  ctx().strm.wait();
}

void relu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const memory::dims flat{x.numel()};
  auto& e = cached<EltBwd>(key_of("relu_bwd", {flat}), [&] {
    dnnl::eltwise_backward::primitive_desc pd(
        dnnl::eltwise_backward::desc(algorithm::eltwise_relu, plain(flat), plain(flat), 0.f, 0.f), ctx().eng,
        relu_fwd_pd(plain(flat)));
    return EltBwd{pd, dnnl::eltwise_backward(pd)};
  });
  e.prim.execute(ctx().strm, {{DNNL_ARG_SRC, wrap(x, flat)},
                              {DNNL_ARG_DIFF_DST, wrap(dy, flat)},
                              {DNNL_ARG_DIFF_SRC, wrap(dx, flat)}});
  ctx().strm.wait();
}

namespace {
struct PoolFwd {
  dnnl::pooling_forward::primitive_desc pd;
  dnnl::pooling_forward prim;
};
struct PoolBwd {
  dnnl::pooling_backward::primitive_desc pd;
  dnnl::pooling_backward prim;
};
// Global average: one window covering the whole plane.
dnnl::pooling_forward::primitive_desc pool_fwd_pd(algorithm alg, const memory::dims& x, const memory::dims& y,
                                                  const memory::dims& kernel, const memory::dims& stride) {
  return {dnnl::pooling_forward::desc(prop_kind::forward_training, alg, plain(x), plain(y), stride, kernel, {0, 0},
                                      {0, 0}),
          ctx().eng};
}
PoolBwd& pool_bwd(const char* name, algorithm alg, const memory::dims& x, const memory::dims& y,
                  const memory::dims& kernel, const memory::dims& stride) {
  return cached<PoolBwd>(key_of(name, {x, y}), [&] {
    dnnl::pooling_backward::primitive_desc pd(
        dnnl::pooling_backward::desc(alg, plain(x), plain(y), stride, kernel, {0, 0}, {0, 0}), ctx().eng,
        pool_fwd_pd(alg, x, y, kernel, stride));
    return PoolBwd{pd, dnnl::pooling_backward(pd)};
  });
}
}  // namespace

void global_avg_pool_forward(const Tensor& x, Tensor& y) {
  const auto xd = dims_of(x);
  const memory::dims yd{xd[0], xd[1], 1, 1}, kernel{xd[2], xd[3]};
  auto& e = cached<PoolFwd>(key_of("gap_fwd", {xd}), [&] {
    auto pd = pool_fwd_pd(algorithm::pooling_avg_exclude_padding, xd, yd, kernel, {1, 1});
    return PoolFwd{pd, dnnl::pooling_forward(pd)};
  });
  e.prim.execute(ctx().strm, {{DNNL_ARG_SRC, wrap(x)}, {DNNL_ARG_DST, wrap(y, yd)}});
  ctx().strm.wait();
}

void global_avg_pool_backward(const Tensor& dy, Tensor& dx) {
  const auto xd = dims_of(dx);
  const memory::dims yd{xd[0], xd[1], 1, 1}, kernel{xd[2], xd[3]};
  auto& e = pool_bwd("gap_bwd", algorithm::pooling_avg_exclude_padding, xd, yd, kernel, {1, 1});
  e.prim.execute(ctx().strm, {{DNNL_ARG_DIFF_DST, wrap(dy, yd)}, {DNNL_ARG_DIFF_SRC, wrap(dx)}});
  ctx().strm.wait();
}

namespace {
using nf = dnnl::normalization_flags;
struct BnFwd {
  dnnl::batch_normalization_forward::primitive_desc pd;
  dnnl::batch_normalization_forward prim;
};
struct BnBwd {
  dnnl::batch_normalization_backward::primitive_desc pd;
  dnnl::batch_normalization_backward prim;
  Tensor dgamma, dbeta;  // stand-ins when the caller wants no parameter gradients
};
dnnl::batch_normalization_forward::primitive_desc bn_fwd_pd(prop_kind pk, const memory::dims& x, float eps, nf flags) {
  return {dnnl::batch_normalization_forward::desc(pk, plain(x), eps, flags), ctx().eng};
}
const nf kAffine = nf::use_scale | nf::use_shift;
std::uint64_t eps_bits(float eps) { return std::bit_cast<std::uint32_t>(eps); }
}  // namespace

void batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y,
                             Tensor& save_mean, Tensor& save_var) {
  const auto xd = dims_of(x);
  auto& e = cached<BnFwd>(key_of("bn_fwd_train", {xd}, eps_bits(eps)), [&] {
    auto pd = bn_fwd_pd(prop_kind::forward_training, xd, eps, kAffine);
    return BnFwd{pd, dnnl::batch_normalization_forward(pd)};
  });
  e.prim.execute(ctx().strm, {{DNNL_ARG_SRC, wrap(x)},
                              {DNNL_ARG_SCALE, wrap(gamma)},
                              {DNNL_ARG_SHIFT, wrap(beta)},
                              {DNNL_ARG_DST, wrap(y)},
                              {DNNL_ARG_MEAN, wrap(save_mean)},
                              {DNNL_ARG_VARIANCE, wrap(save_var)}});
  ctx().strm.wait();
}

void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                            const Tensor& var, float eps, Tensor& y) {
  const auto xd = dims_of(x);
  auto& e = cached<BnFwd>(key_of("bn_fwd_eval", {xd}, eps_bits(eps)), [&] {
    auto pd = bn_fwd_pd(prop_kind::forward_inference, xd, eps, kAffine | nf::use_global_stats);
    return BnFwd{pd, dnnl::batch_normalization_forward(pd)};
  });
  e.prim.execute(ctx().strm, {{DNNL_ARG_SRC, wrap(x)},
                              {DNNL_ARG_SCALE, wrap(gamma)},
                              {DNNL_ARG_SHIFT, wrap(beta)},
                              {DNNL_ARG_MEAN, wrap(mean)},
                              {DNNL_ARG_VARIANCE, wrap(var)},
                              {DNNL_ARG_DST, wrap(y)}});
  ctx().strm.wait();
}

void batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean, const Tensor& var,
                        float eps, bool global_stats, Tensor& dx, Tensor* dgamma, Tensor* dbeta) {
  const auto xd = dims_of(x);
  const nf flags = global_stats ? kAffine | nf::use_global_stats : kAffine;
  const std::uint64_t key_flags = eps_bits(eps) * 2 + (global_stats ? 1 : 0);
  auto& e = cached<BnBwd>(key_of("bn_bwd", {xd}, key_flags), [&] {
    dnnl::batch_normalization_backward::primitive_desc pd(
        dnnl::batch_normalization_backward::desc(prop_kind::backward, plain(xd), plain(xd), eps, flags), ctx().eng,
        bn_fwd_pd(prop_kind::forward_training, xd, eps, flags));
    return BnBwd{pd, dnnl::batch_normalization_backward(pd), Tensor::empty({xd[1]}), Tensor::empty({xd[1]})};
  });
  e.prim.execute(ctx().strm, {{DNNL_ARG_SRC, wrap(x)},
                              {DNNL_ARG_DIFF_DST, wrap(dy)},
                              {DNNL_ARG_SCALE, wrap(gamma)},
                              // oneDNN 2.6 refuses to run without a shift argument although the
                              // gradient does not depend on it; any [C] buffer will do.
                              {DNNL_ARG_SHIFT, wrap(gamma)},
                              {DNNL_ARG_MEAN, wrap(mean)},
                              {DNNL_ARG_VARIANCE, wrap(var)},
                              {DNNL_ARG_DIFF_SRC, wrap(dx)},
                              {DNNL_ARG_DIFF_SCALE, wrap(dgamma ? *dgamma : e.dgamma)},
                              {DNNL_ARG_DIFF_SHIFT, wrap(dbeta ? *dbeta : e.dbeta)}});
  ctx().strm.wait();
}

namespace {
struct IpFwd {
  dnnl::inner_product_forward::primitive_desc pd;
  dnnl::inner_product_forward prim;
};
struct IpBwdData {
  dnnl::inner_product_backward_data::primitive_desc pd;
  dnnl::inner_product_backward_data prim;
};
struct IpBwdWeights {
  dnnl::inner_product_backward_weights::primitive_desc pd;
  dnnl::inner_product_backward_weights prim;
};
dnnl::inner_product_forward::primitive_desc ip_fwd_pd(const memory::dims& x, const memory::dims& w, bool bias) {
  const memory::desc b = bias ? plain({w[0]}) : memory::desc();
  return {dnnl::inner_product_forward::desc(prop_kind::forward_training, plain(x), plain(w), b, plain({x[0], w[0]})),
          ctx().eng};
}
}  // namespace

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  const auto xd = dims_of(x), wd = dims_of(w);
  auto& e = cached<IpFwd>(key_of("linear_fwd", {xd, wd}, b != nullptr), [&] {
    auto pd = ip_fwd_pd(xd, wd, b != nullptr);
    return IpFwd{pd, dnnl::inner_product_forward(pd)};
  });
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(x)}, {DNNL_ARG_WEIGHTS, wrap(w)}, {DNNL_ARG_DST, wrap(y)}};
  if (b) args[DNNL_ARG_BIAS] = wrap(*b);
  e.prim.execute(ctx().strm, args);
  ctx().strm.wait();
}

void linear_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx) {
  const auto dxd = dims_of(dx), wd = dims_of(w);
  auto& e = cached<IpBwdData>(key_of("linear_bwd_data", {dxd, wd}), [&] {
    dnnl::inner_product_backward_data::primitive_desc pd(
        dnnl::inner_product_backward_data::desc(plain(dxd), plain(wd), plain(dims_of(dy))), ctx().eng,
        ip_fwd_pd(dxd, wd, false));
    return IpBwdData{pd, dnnl::inner_product_backward_data(pd)};
  });
  e.prim.execute(ctx().strm, {{DNNL_ARG_DIFF_DST, wrap(dy)}, {DNNL_ARG_WEIGHTS, wrap(w)}, {DNNL_ARG_DIFF_SRC, wrap(dx)}});
  ctx().strm.wait();
}

void linear_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db) {
  const auto xd = dims_of(x), wd = dims_of(dw);
  const bool bias = db != nullptr;
  auto& e = cached<IpBwdWeights>(key_of("linear_bwd_weights", {xd, wd}, bias), [&] {
    const memory::desc b = bias ? plain({wd[0]}) : memory::desc();
    dnnl::inner_product_backward_weights::primitive_desc pd(
        dnnl::inner_product_backward_weights::desc(plain(xd), plain(wd), b, plain(dims_of(dy))), ctx().eng,
        ip_fwd_pd(xd, wd, bias));
    return IpBwdWeights{pd, dnnl::inner_product_backward_weights(pd)};
  });
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(x)}, {DNNL_ARG_DIFF_DST, wrap(dy)}, {DNNL_ARG_DIFF_WEIGHTS, wrap(dw)}};
  if (db) args[DNNL_ARG_DIFF_BIAS] = wrap(*db);
  e.prim.execute(ctx().strm, args);
  ctx().strm.wait();
}

namespace {
struct LogSoftmax {
  dnnl::logsoftmax_forward::primitive_desc pd;
  dnnl::logsoftmax_forward prim;
};
}  // namespace

double softmax_cross_entropy_forward(const Tensor& logits, std::span<const std::int64_t> labels, Tensor& probs) {
  const auto d = dims_of(logits);
  auto& e = cached<LogSoftmax>(key_of("logsoftmax", {d}), [&] {
    dnnl::logsoftmax_forward::primitive_desc pd(
        dnnl::logsoftmax_forward::desc(prop_kind::forward_training, plain(d), 1), ctx().eng);
    return LogSoftmax{pd, dnnl::logsoftmax_forward(pd)};
  });
  e.prim.execute(ctx().strm, {{DNNL_ARG_SRC, wrap(logits)}, {DNNL_ARG_DST, wrap(probs)}});
  ctx().strm.wait();
  double loss = 0;
  float* p = probs.data();
  for (Index i = 0; i < d[0]; ++i) loss -= p[i * d[1] + labels[static_cast<std::size_t>(i)]];
  for (Index i = 0; i < probs.numel(); ++i) p[i] = std::exp(p[i]);
  return loss / static_cast<double>(d[0]);
}

}  // namespace morphokd::onednn
