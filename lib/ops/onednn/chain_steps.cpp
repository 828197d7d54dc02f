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

void TapSteps::output(const memory& act, const memory::dims& dims, Tensor& out) {
  fit_shape(out, Shape(std::vector<Index>(dims.begin(), dims.end())));
  if (!user) user = memory(plain(dims), ctx().eng, DNNL_MEMORY_NONE);
  user.set_data_handle(out.data());
  if (!to_plain) to_plain = dnnl::reorder(act, user);
  to_plain.execute(ctx().strm, const_cast<memory&>(act), user);
}

void TapSteps::gradient(const Tensor& grad, const memory& into, bool first) {
  user.set_data_handle(const_cast<float*>(grad.data()));
  dnnl::reorder& step = first ? grad_in : grad_add;
  if (!step) {
    dnnl::primitive_attr attr;
    if (!first) {
      dnnl::post_ops po;
      po.append_sum(1.f);
      attr.set_post_ops(po);
    }
    step = dnnl::reorder(dnnl::reorder::primitive_desc(user, into, attr));
  }
  step.execute(ctx().strm, user, const_cast<memory&>(into));
}

dnnl::eltwise_backward::primitive_desc relu_backward_from_output(const memory::desc& d) {
  const auto alg = algorithm::eltwise_relu_use_dst_for_bwd;
  return {dnnl::eltwise_backward::desc(alg, d, d, 0.f, 0.f), ctx().eng,
          dnnl::eltwise_forward::primitive_desc(dnnl::eltwise_forward::desc(prop_kind::forward_training, alg, d, 0.f, 0.f), ctx().eng)};
}

}  // namespace morphokd::onednn::detail
