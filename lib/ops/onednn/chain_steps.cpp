#include "chain_steps.hpp"

namespace morphokd::onednn::detail {

using dnnl::algorithm;
using dnnl::prop_kind;

MaxPoolSteps plan_max_pool(const memory::desc& src) {
  const memory::dims d = src.dims(), out{d[0], d[1], d[2] / 2, d[3] / 2};
  MaxPoolSteps s;
  s.pd = dnnl::pooling_forward::primitive_desc(
      dnnl::pooling_forward::desc(prop_kind::forward_training, algorithm::pooling_max, src, any(out), {2, 2}, {2, 2}, {0, 0},
                                  {0, 0}),
      ctx().eng);
  // The gradients' layouts given, so they are the activations'.
  const dnnl::pooling_backward::primitive_desc bpd(
      dnnl::pooling_backward::desc(algorithm::pooling_max, src, s.pd.dst_desc(), {2, 2}, {2, 2}, {0, 0}, {0, 0}), ctx().eng, s.pd);
  if (maxpool16_applies(src, s.pd.dst_desc(), s.pd.workspace_desc())) {
    s.fwd_impl = s.bwd_impl = kMaxpool16Impl;
  } else {
    s.fwd = dnnl::pooling_forward(s.pd);
    s.bwd = dnnl::pooling_backward(bpd);
    s.fwd_impl = s.pd.impl_info_str();
    s.bwd_impl = bpd.impl_info_str();
  }
  return s;
}

dnnl::eltwise_backward::primitive_desc relu_backward_from_output(const memory::desc& d) {
  const auto alg = algorithm::eltwise_relu_use_dst_for_bwd;
  return {dnnl::eltwise_backward::desc(alg, d, d, 0.f, 0.f), ctx().eng,
          dnnl::eltwise_forward::primitive_desc(dnnl::eltwise_forward::desc(prop_kind::forward_training, alg, d, 0.f, 0.f), ctx().eng)};
}

}  // namespace morphokd::onednn::detail
