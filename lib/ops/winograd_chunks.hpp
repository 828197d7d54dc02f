// The chunking behind Winograd's reproducible bits (ops.hpp, kWinogradChunk), shared by the
// conv ops and the inference chain.
#pragma once

#include <algorithm>

#include "morphokd/ops/ops.hpp"

namespace morphokd::ops {

// run(chunk, first, k) over x's images in chunks of exactly kWinogradChunk: `chunk` views x
// where kWinogradChunk images remain, else is pad(shape) (a buffer of the chunk's shape, asked
// for only then) holding the last k images and zeros. Images first .. first+k-1 of the
// caller's output are the chunk's first k.
template <class Pad, class Run>
void for_each_winograd_chunk(const Tensor& x, Pad pad, Run run) {
  check_winograd_threads();
  const Shape chunk = x.shape().with_batch(kWinogradChunk);
  const Index n = x.dim(0), image = chunk.numel() / kWinogradChunk;
  for (Index first = 0; first < n; first += kWinogradChunk) {
    const Index k = std::min(kWinogradChunk, n - first);
    const float* src = x.data() + first * image;
    if (k == kWinogradChunk) {  // x is only read
      run(Tensor::wrap(const_cast<float*>(src), chunk), first, k);
      continue;
    }
    Tensor part = pad(chunk);
    std::copy_n(src, k * image, part.data());
    std::fill(part.data() + k * image, part.data() + part.numel(), 0.0f);
    run(part, first, k);
  }
}

}  // namespace morphokd::ops
