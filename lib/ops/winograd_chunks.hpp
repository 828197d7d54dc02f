// The chunking behind Winograd's reproducible bits (ops.hpp, kWinogradChunk), shared by the
// conv ops and the inference chain.
#pragma once

#include <algorithm>

#include "morphokd/ops/ops.hpp"

namespace morphokd::ops {

// run(chunk, first, k) over x's images in chunks of exactly kWinogradChunk: `chunk` views x
// where kWinogradChunk images remain, else is `pad` ([kWinogradChunk, ...x]) holding the
// last k images and zeros. Images first .. first+k-1 of the caller's output are the chunk's
// first k.
template <class Run>
void for_each_winograd_chunk(const Tensor& x, Tensor& pad, Run run) {
  check_winograd_threads();
  const Index n = x.dim(0), image = x.numel() / std::max<Index>(n, 1);
  for (Index first = 0; first < n; first += kWinogradChunk) {
    const Index k = std::min(kWinogradChunk, n - first);
    const float* src = x.data() + first * image;
    if (k == kWinogradChunk) {  // x is only read
      run(Tensor::wrap(const_cast<float*>(src), pad.shape()), first, k);
      continue;
    }
    std::copy_n(src, k * image, pad.data());
    std::fill(pad.data() + k * image, pad.data() + pad.numel(), 0.0f);
    run(static_cast<const Tensor&>(pad), first, k);
  }
}

}  // namespace morphokd::ops
