// ops::InferenceChain on oneDNN: one primitive per stage, conv + bias + ReLU fused through a
// post-op, the layouts (and in bf16 the data type) oneDNN picks kept from stage to stage; fp32
// max-pools on AVX-512 by our kernel (maxpool_blocked.hpp, oneDNN's bytes).
// fp32-winograd: the modules' Winograd kernels (their bits), where oneDNN has them, else direct.
#include <algorithm>
#include <string>

#include "context.hpp"
#include "maxpool_blocked.hpp"
#include "morphokd/error.hpp"
#include "onednn_ops.hpp"

namespace morphokd::onednn {

using namespace detail;
using dnnl::algorithm;
using dnnl::prop_kind;

namespace {

// The conv stage's primitive in bf16 (forward_inference, ReLU as a post-op).
dnnl::convolution_forward::primitive_desc bf16_conv(const memory::dims& x, const memory::dims& w,
                                                    const memory::dims& y, bool bias, bool relu) {
  return conv_fwd_pd(x, w, y, bias, relu ? relu_post_op() : dnnl::primitive_attr(), dt::bf16, prop_kind::forward_inference);
}

}  // namespace

struct ChainPlan::Impl {
  struct Step {
    dnnl::primitive prim;                  // empty: a pool of ours (maxpool_blocked.hpp)
    std::unordered_map<int, memory> args;  // bound once; src/dst (a reorder's from/to) in the ping-pong buffers
    int stage = -1;                        // the stage whose output this step completes; -1: none (a reorder, a conv before its ReLU)
    memory::desc dst;
    Shape shape;                           // the stage's output, NCHW
    dnnl::reorder to_plain;                // built when the stage is first tapped
  };
  std::vector<Step> steps;
  memory input;  // the user's input, rebound to x's data each run
  Tensor buffers[2];  // on pages of their own, huge where granted: up to 67 MB each
};

ChainPlan::ChainPlan(const std::vector<ops::ChainStage>& stages, const Shape& in, Precision precision)
    : impl_(std::make_unique<Impl>()) {
  Impl& p = *impl_;
  memory::dims d(in.dims().begin(), in.dims().end());
  p.input = memory(plain(d), ctx().eng, DNNL_MEMORY_NONE);
  memory::desc cur = plain(d);
  // Steps alternate between the two buffers; sizes are known once every step is planned.
  std::vector<Impl::Step> steps;
  std::size_t bytes = 0;
  auto add = [&](dnnl::primitive prim, const memory::desc& dst, int stage, const memory::dims& out,
                 std::unordered_map<int, memory> args) {
    steps.push_back({std::move(prim), std::move(args), stage, dst, Shape(std::vector<Index>(out.begin(), out.end())), {}});
    bytes = std::max(bytes, dst.get_size());
    cur = dst;
  };
  auto log = [&](const char* op, const memory::dims& out, const std::string& impl) {
    log_kernel(key_of(op, {d, out}, static_cast<std::uint64_t>(precision)), impl);
  };
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const ops::ChainStage& st = stages[s];
    if (st.weight) {
      const memory::dims wd = dims_of(*st.weight), yd{d[0], wd[0], d[2], d[3]};
      auto pd = precision == Precision::bf16 ? bf16_conv(d, wd, yd, st.bias != nullptr, st.relu)
                                             : conv_fwd_pd_matching(d, wd, yd, st.bias != nullptr, st.relu, ops::conv_algorithm(precision));
      const bool fused = st.relu && pd.get_primitive_attr().get_post_ops().len() == 1;
      if (pd.src_desc() != cur) {  // at the input when the conv wants a blocked source; rare between stages
        const dnnl::reorder::primitive_desc rpd(ctx().eng, cur, ctx().eng, pd.src_desc());
        log("chain_reorder", d, rpd.impl_info_str());
        add(dnnl::reorder(rpd), pd.src_desc(), -1, d, {});
      }
      memory user_wei = wrap(*st.weight), wei(pd.weights_desc(), ctx().eng);  // reordered once: the network is frozen
      dnnl::reorder(user_wei, wei).execute(ctx().strm, user_wei, wei);
      std::unordered_map<int, memory> args{{DNNL_ARG_WEIGHTS, wei}};
      if (st.bias) {
        memory b(plain({wd[0]}), ctx().eng);
        std::copy_n(st.bias->data(), wd[0], static_cast<float*>(b.get_data_handle()));
        args[DNNL_ARG_BIAS] = b;
      }
      log(fused ? "chain_conv_relu" : "chain_conv", yd, pd.impl_info_str());
      add(dnnl::convolution_forward(pd), pd.dst_desc(), st.relu && !fused ? -1 : static_cast<int>(s), yd, std::move(args));
      d = yd;
      if (st.relu && !fused) {
        const dnnl::eltwise_forward::primitive_desc rpd(
            dnnl::eltwise_forward::desc(prop_kind::forward_inference, algorithm::eltwise_relu, cur, 0.f, 0.f), ctx().eng);
        log("chain_relu", yd, rpd.impl_info_str());
        add(dnnl::eltwise_forward(rpd), rpd.dst_desc(), static_cast<int>(s), yd, {});
      }
    } else {
      const memory::dims yd{d[0], d[1], d[2] / 2, d[3] / 2};
      const dnnl::pooling_forward::primitive_desc pd(
          dnnl::pooling_forward::desc(prop_kind::forward_inference, algorithm::pooling_max, cur, any(yd, cur.data_type()), {2, 2},
                                      {2, 2}, {0, 0}, {0, 0}),
          ctx().eng);
      if (maxpool16_applies(cur, pd.dst_desc())) {
        log("chain_maxpool", yd, kMaxpool16Impl);
        add({}, pd.dst_desc(), static_cast<int>(s), yd, {});
      } else {
        log("chain_maxpool", yd, pd.impl_info_str());
        add(dnnl::pooling_forward(pd), pd.dst_desc(), static_cast<int>(s), yd, {});
      }
      d = yd;
    }
  }
  ctx().strm.wait();
  for (auto& b : p.buffers) fit_capacity(b, floats_for(bytes));
  for (std::size_t k = 0; k < steps.size(); ++k) {
    Impl::Step& step = steps[k];
    step.args[DNNL_ARG_DST] = memory(step.dst, ctx().eng, p.buffers[k % 2].data());
    step.args[DNNL_ARG_SRC] = k == 0 ? p.input : steps[k - 1].args[DNNL_ARG_DST];
  }
  p.steps = std::move(steps);
}

ChainPlan::~ChainPlan() = default;

void ChainPlan::run(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out) {
  Impl& p = *impl_;
  p.input.set_data_handle(const_cast<float*>(x.data()));
  out.resize(taps.size());
  std::size_t next = 0;
  for (Impl::Step& step : p.steps) {
    if (step.prim)
      step.prim.execute(ctx().strm, step.args);
    else
      maxpool16_forward(step.args[DNNL_ARG_SRC], step.args[DNNL_ARG_DST]);
    if (next == taps.size() || step.stage != static_cast<int>(taps[next])) continue;
    fit_shape(out[next], step.shape);
    memory& have = step.args[DNNL_ARG_DST];
    memory user = wrap(out[next]);
    if (!step.to_plain) step.to_plain = dnnl::reorder(have, user);
    step.to_plain.execute(ctx().strm, have, user);
    ++next;
  }
  ctx().strm.wait();
}

}  // namespace morphokd::onednn
