// row_sums8_avx512: kernels.hpp's row_sums for eight rows at once. Lane k of each double
// vector is row k; per step of 8 elements the 8x8 float block is transposed so column j holds
// element j of every row. Each lane does what row_sums does for its row, in the same order,
// with a separate multiply and add: the same bits. (The library builds with -ffp-contract=off:
// a fused (u - v)^2 + ee would round once where row_sums rounds twice.)
#include "kernels.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace morphokd::ref {

#if defined(__x86_64__)
namespace {

// rows[k] = 8 floats of row k; afterwards rows[j] = element j of rows 0..7.
__attribute__((target("avx512f"))) inline void transpose8x8(__m256 rows[8]) {
  __m256 t[8], s[8];
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm256_unpacklo_ps(rows[k], rows[k + 1]);      // r0[0] r1[0] r0[1] r1[1] | r0[4] ...
    t[k + 1] = _mm256_unpackhi_ps(rows[k], rows[k + 1]);  // r0[2] r1[2] r0[3] r1[3] | r0[6] ...
  }
  for (int k = 0; k < 8; k += 4) {
    s[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);      // element 0 (| 4) of 4 rows
    s[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xEE);  // element 1 (| 5)
    s[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
    s[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {
    rows[j] = _mm256_permute2f128_ps(s[j], s[j + 4], 0x20);
    rows[j + 4] = _mm256_permute2f128_ps(s[j], s[j + 4], 0x31);
  }
}

// _mm512_cvtps_pd, all lanes, in the zero-masked form: GCC 12 warns on the plain one's
// undefined pass-through operand.
__attribute__((target("avx512f"))) inline __m512d widen(__m256 x) { return _mm512_maskz_cvtps_pd(0xFF, x); }

}  // namespace

__attribute__((target("avx512f"))) void row_sums8_avx512(Index d, const float* const a[kSumRows],
                                                           const float* const b[kSumRows], bool with_mse,
                                                           RowSums out[kSumRows]) {
  __m512d ab = _mm512_setzero_pd(), aa = ab, bb = ab, ee = ab;
  Index j = 0;
  for (; j + 8 <= d; j += 8) {
    __m256 ca[8], cb[8];
    for (int k = 0; k < 8; ++k) {
      ca[k] = _mm256_loadu_ps(a[k] + j);
      cb[k] = _mm256_loadu_ps(b[k] + j);
    }
    transpose8x8(ca);
    transpose8x8(cb);
    for (int c = 0; c < 8; ++c) {
      const __m512d u = widen(ca[c]), v = widen(cb[c]);
      ab = _mm512_add_pd(ab, _mm512_mul_pd(u, v));
      aa = _mm512_add_pd(aa, _mm512_mul_pd(u, u));
      bb = _mm512_add_pd(bb, _mm512_mul_pd(v, v));
      if (with_mse) {
        const __m512d e = _mm512_sub_pd(u, v);
        ee = _mm512_add_pd(ee, _mm512_mul_pd(e, e));
      }
    }
  }
  alignas(64) double lanes[4][8];
  _mm512_store_pd(lanes[0], ab);
  _mm512_store_pd(lanes[1], aa);
  _mm512_store_pd(lanes[2], bb);
  _mm512_store_pd(lanes[3], ee);
  for (int k = 0; k < 8; ++k)  // the last d % 8 elements, each row on from its lane's sums
    out[k] = row_sums(d - j, a[k] + j, b[k] + j, with_mse, {lanes[0][k], lanes[1][k], lanes[2][k], lanes[3][k]});
}

#else  // never chosen: detail::cpu_has_avx512() is false
void row_sums8_avx512(Index d, const float* const a[kSumRows], const float* const b[kSumRows], bool with_mse,
                      RowSums out[kSumRows]) {
  for (Index k = 0; k < kSumRows; ++k) out[k] = row_sums(d, a[k], b[k], with_mse);
}
#endif

}  // namespace morphokd::ref
