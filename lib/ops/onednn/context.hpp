// What the oneDNN backend's files share: one engine and stream, plain-layout descriptors
// over our NCHW buffers, and the log of which implementation each primitive runs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "morphokd/ops/ops.hpp"
#include "morphokd/tensor.hpp"

namespace morphokd::onednn::detail {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

struct Context {
  Context();
  dnnl::engine eng;
  dnnl::stream strm;
  std::mutex mu;
  std::map<std::string, std::string> kernels;  // cache key -> impl_info_str()
};
Context& ctx();

memory::dims dims_of(const Tensor& t);
memory::desc plain(const memory::dims& d);  // f32, row-major (nchw for 4-d)
memory::desc any(const memory::dims& d, dt type = dt::f32);  // layout left to the primitive
memory wrap(const Tensor& t);
memory wrap(const Tensor& t, const memory::dims& d);  // t's data seen with dims d

// 64-byte aligned storage for activations in any layout.
struct alignas(64) CacheLine {
  std::byte b[64];
};
inline std::size_t lines_for(std::size_t bytes) { return (bytes + sizeof(CacheLine) - 1) / sizeof(CacheLine); }
// A Tensor's length that holds `bytes` in whole cache lines (planned buffers: fit_capacity).
inline Index floats_for(std::size_t bytes) { return static_cast<Index>(lines_for(bytes) * sizeof(CacheLine) / sizeof(float)); }

// A 3x3, stride-1, pad-1 convolution. prop_kind forward_training everywhere, the frozen chain
// included: oneDNN picks its kernel by prop_kind (on AVX512-BF16 CPUs brgconv for inference,
// jit for training), and the chain must run the module path's kernel to give its bits.
// (The bf16 chain has no module path to match: forward_inference, `type` for all but the bias.)
// fp32 direct on VGG's wide 16x16 and 8x8 layers on AMD CPUs: NHWC activations, which oneDNN
// runs on brgconv where it has that kernel (else the `any` choice stands).
dnnl::convolution_forward::primitive_desc conv_fwd_pd(const memory::dims& x, const memory::dims& w,
                                                      const memory::dims& y, bool bias,
                                                      const dnnl::primitive_attr& attr = {}, dt type = dt::f32,
                                                      dnnl::prop_kind prop = dnnl::prop_kind::forward_training,
                                                      dnnl::algorithm alg = dnnl::algorithm::convolution_direct);

// The module path's fp32 descriptor for `alg`: Winograd where oneDNN has a kernel for the
// shape, else direct (the Winograd chain uses it too, to give the modules' bits).
dnnl::convolution_forward::primitive_desc conv_fwd_pd_for(const memory::dims& x, const memory::dims& w,
                                                          const memory::dims& y, bool bias, ops::ConvAlgorithm alg,
                                                          const dnnl::primitive_attr& attr = {});

// ReLU as a primitive's post-op.
dnnl::primitive_attr relu_post_op();

// The chains' conv: the kernel the module path's forward runs for this shape and algorithm
// (so a chain gives its bits), with the ReLU as a post-op where that kernel takes one; else
// without, and the caller runs the ReLU (check the attr's post-ops).
dnnl::convolution_forward::primitive_desc conv_fwd_pd_matching(const memory::dims& x, const memory::dims& w,
                                                               const memory::dims& y, bool bias, bool relu,
                                                               ops::ConvAlgorithm alg);

// The module path's data-gradient descriptor for `alg` (the gradient chain runs it too).
dnnl::convolution_backward_data::primitive_desc conv_bwd_data_pd_for(const memory::dims& dx, const memory::dims& w,
                                                                     const memory::dims& dy, ops::ConvAlgorithm alg);

std::string key_of(const char* op, std::initializer_list<memory::dims> shapes, std::uint64_t flags = 0);
void log_kernel(const std::string& key, const std::string& impl);

}  // namespace morphokd::onednn::detail
