// The 2x2 max-pool, forward and backward, on oneDNN's 16-channel blocked layout (aBcd16b),
// with oneDNN's workspace: one byte per output, the winner's place in its window, 2 * row +
// column, the first on ties. On an Intel Xeon with AMX, oneDNN 2.6's pooling ran 2-9x slower
// (its backward zeroes the input gradient and then scatters into it). Both only compare and
// move values; test_train_chain checks that they give oneDNN's bytes, workspace included.
#pragma once
#include <cstdint>

#include "context.hpp"

namespace morphokd::onednn::detail {

// What the kernel logs (ops::onednn_kernels_used) name where these run.
inline constexpr const char* kMaxpool16Impl = "morphokd:maxpool16:avx512";

// Whether these kernels can stand in for oneDNN's pooling of `src` into `dst` (and `ws`, where
// the pooling keeps a workspace; an empty desc where not): an AVX-512 CPU, all in aBcd16b.
bool maxpool16_applies(const memory::desc& src, const memory::desc& dst, const memory::desc& ws = {});

// y [N, C, H/2, W/2] and, where given, its workspace `which` from x [N, C, H, W], in the
// layouts maxpool16_applies accepted.
void maxpool16_forward(const memory& x, const memory& y, const memory& which = {});
// dx [N, C, H, W] from dy [N, C, H/2, W/2] and the forward's `which`.
void maxpool16_backward(const memory& dy, const memory& which, const memory& dx);

}  // namespace morphokd::onednn::detail
