// maxpool_blocked.hpp's kernels, one vector of 16 channels at a time. Forward: the window's
// first value, then each later one where strictly greater (oneDNN's order and tie rule).
// Backward: one store per place in the window, the gradient where that place won, else zero.
#include "maxpool_blocked.hpp"

#include "core/cpu_features.hpp"
#include "morphokd/error.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace morphokd::onednn::detail {

namespace {
using tag = memory::format_tag;
constexpr memory::dim kBlock = 16;

// f(where the window's top input row starts, where the output row starts), in floats, for
// every (image, channel block, output row).
template <class F>
void for_each_output_row(const memory::dims& s, F f) {
  const memory::dim planes = s[0] * (s[1] / kBlock), h = s[2], w = s[3], oh = h / 2;
#pragma omp parallel for schedule(static)
  for (memory::dim p = 0; p < planes; ++p)
    for (memory::dim i = 0; i < oh; ++i) f((p * h + 2 * i) * w * kBlock, (p * oh + i) * (w / 2) * kBlock);
}

}  // namespace

// cpu_has_avx512() is false off x86-64, so the kernels below never run there.
bool maxpool16_applies(const memory::desc& src, const memory::desc& dst, const memory::desc& ws) {
  const memory::dims d = src.dims();
  if (!morphokd::detail::cpu_has_avx512() || d.size() != 4 || d[1] % kBlock != 0 || d[2] % 2 != 0 || d[3] % 2 != 0) return false;
  const memory::dims o{d[0], d[1], d[2] / 2, d[3] / 2};
  return src == memory::desc(d, dt::f32, tag::aBcd16b) && dst == memory::desc(o, dt::f32, tag::aBcd16b) &&
         (ws == memory::desc() || ws == memory::desc(o, dt::u8, tag::aBcd16b));
}

#if defined(__x86_64__)
namespace {
__attribute__((target("avx512f"))) void forward(const memory::dims& s, const float* x, float* y, std::uint8_t* which) {
  const memory::dim ow = s[3] / 2, row = s[3] * kBlock;
  for_each_output_row(s, [&](memory::dim in, memory::dim out) __attribute__((target("avx512f"))) {
    const float* const top = x + in;
    for (memory::dim j = 0; j < ow; ++j) {
      const float* const at[3] = {top + (2 * j + 1) * kBlock, top + row + 2 * j * kBlock, top + row + (2 * j + 1) * kBlock};
      __m512 best = _mm512_loadu_ps(top + 2 * j * kBlock);
      __m512i place = _mm512_setzero_si512();
      for (int q = 0; q < 3; ++q) {
        const __m512 v = _mm512_loadu_ps(at[q]);
        const __mmask16 more = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, more, v);
        place = _mm512_mask_mov_epi32(place, more, _mm512_set1_epi32(q + 1));
      }
      _mm512_storeu_ps(y + out + j * kBlock, best);
      if (which) _mm_storeu_si128(reinterpret_cast<__m128i*>(which + out + j * kBlock), _mm512_maskz_cvtepi32_epi8(0xFFFF, place));
    }
  });
}

__attribute__((target("avx512f"))) void backward(const memory::dims& s, const float* dy, const std::uint8_t* which, float* dx) {
  const memory::dim ow = s[3] / 2, row = s[3] * kBlock;
  for_each_output_row(s, [&](memory::dim in, memory::dim out) __attribute__((target("avx512f"))) {
    float* const rows[2] = {dx + in, dx + in + row};
    for (memory::dim j = 0; j < ow; ++j) {
      const __m512 g = _mm512_loadu_ps(dy + out + j * kBlock);
      const __m512i won = _mm512_maskz_cvtepu8_epi32(0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(which + out + j * kBlock)));
      for (int place = 0; place < 4; ++place)
        _mm512_storeu_ps(rows[place >> 1] + (2 * j + (place & 1)) * kBlock,
                         _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(won, _mm512_set1_epi32(place)), g));
    }
  });
}
}  // namespace

void maxpool16_forward(const memory& x, const memory& y, const memory& which) {
  forward(x.get_desc().dims(), static_cast<const float*>(x.get_data_handle()), static_cast<float*>(y.get_data_handle()),
          which ? static_cast<std::uint8_t*>(which.get_data_handle()) : nullptr);
}

void maxpool16_backward(const memory& dy, const memory& which, const memory& dx) {
  backward(dx.get_desc().dims(), static_cast<const float*>(dy.get_data_handle()),
           static_cast<const std::uint8_t*>(which.get_data_handle()), static_cast<float*>(dx.get_data_handle()));
}
#else
void maxpool16_forward(const memory&, const memory&, const memory&) { fail("maxpool16_forward: needs AVX-512"); }
void maxpool16_backward(const memory&, const memory&, const memory&) { fail("maxpool16_backward: needs AVX-512"); }
#endif

}  // namespace morphokd::onednn::detail
