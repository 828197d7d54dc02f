// Reference kernels: the readable definition of every op. Templates over the scalar type
// so that the finite-difference gradient checks run this same code in double precision;
// the library instantiates them for float. Parallel with OpenMP only over independent
// outputs, each summed in a fixed order, so results do not depend on the thread count.
#pragma once
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/cpu_features.hpp"
#include "morphokd/error.hpp"
#include "morphokd/parallel.hpp"

namespace morphokd::ref {

using Index = std::int64_t;

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MapM = Eigen::Map<Mat<T>>;
template <class T>
using CMapM = Eigen::Map<const Mat<T>>;

struct ConvDims {
  Index n, ci, co, h, w;  // 3x3 kernel, stride 1, padding 1: output is h x w
};

// col [Ci*9, H*W]: row (c, ky, kx) holds x[c, y+ky-1, x+kx-1] (zero outside the image).
// Row y of the three kx rows is input row y+ky-1 shifted right by one, as is, and shifted
// left by one, a zero filling the vacated end.
template <class T>
void im2col(const ConvDims& d, const T* x, T* col) {
  const Index w = d.w;
  for (Index c = 0; c < d.ci; ++c)
    for (Index ky = 0; ky < 3; ++ky) {
      T* rows = col + (c * 3 + ky) * 3 * d.h * w;  // its kx = 0, 1, 2 rows, d.h * w apart
      for (Index y = 0; y < d.h; ++y) {
        T* out[3] = {rows + y * w, rows + (d.h + y) * w, rows + (2 * d.h + y) * w};
        const Index sy = y + ky - 1;
        if (sy < 0 || sy >= d.h) {
          for (T* o : out) std::fill(o, o + w, T(0));
          continue;
        }
        const T* in = x + (c * d.h + sy) * w;
        out[0][0] = T(0);
        std::copy(in, in + w - 1, out[0] + 1);
        std::copy(in, in + w, out[1]);
        std::copy(in + 1, in + w, out[2]);
        out[2][w - 1] = T(0);
      }
    }
}

// The adjoint of im2col: dx[c, sy, sx] = sum of the col entries that read it.
template <class T>
void col2im(const ConvDims& d, const T* col, T* dx) {
  std::fill(dx, dx + d.ci * d.h * d.w, T(0));
  for (Index c = 0; c < d.ci; ++c)
    for (Index ky = 0; ky < 3; ++ky)
      for (Index kx = 0; kx < 3; ++kx) {
        const T* row = col + ((c * 3 + ky) * 3 + kx) * d.h * d.w;
        for (Index y = 0; y < d.h; ++y)
          for (Index xx = 0; xx < d.w; ++xx) {
            const Index sy = y + ky - 1, sx = xx + kx - 1;
            if (sy >= 0 && sy < d.h && sx >= 0 && sx < d.w) dx[(c * d.h + sy) * d.w + sx] += row[y * d.w + xx];
          }
      }
}

// y_n [Co, HW] = W [Co, Ci*9] * col_n [Ci*9, HW] (+ b), one image per thread.
template <class T>
void conv2d_forward(const ConvDims& d, const T* x, const T* w, const T* b, T* y) {
  const Index k = d.ci * 9, hw = d.h * d.w;
  const CMapM<T> W(w, d.co, k);
#pragma omp parallel
  {
    std::vector<T> col(static_cast<std::size_t>(k * hw));
#pragma omp for schedule(static)
    for (Index n = 0; n < d.n; ++n) {
      im2col(d, x + n * d.ci * hw, col.data());
      MapM<T> Y(y + n * d.co * hw, d.co, hw);
      Y.noalias() = W * CMapM<T>(col.data(), k, hw);
      if (b)
        for (Index o = 0; o < d.co; ++o) Y.row(o).array() += b[o];
    }
  }
}

// dcol_n = W^T dy_n, then dx_n = col2im(dcol_n).
template <class T>
void conv2d_backward_data(const ConvDims& d, const T* dy, const T* w, T* dx) {
  const Index k = d.ci * 9, hw = d.h * d.w;
  const CMapM<T> W(w, d.co, k);
#pragma omp parallel
  {
    std::vector<T> dcol(static_cast<std::size_t>(k * hw));
#pragma omp for schedule(static)
    for (Index n = 0; n < d.n; ++n) {
      MapM<T>(dcol.data(), k, hw).noalias() = W.transpose() * CMapM<T>(dy + n * d.co * hw, d.co, hw);
      col2im(d, dcol.data(), dx + n * d.ci * hw);
    }
  }
}

// One image's term of a weight gradient, transposed: P [k, co] (+)= col_n [k, hw] dy_n^T
// (P = it when `first`). The long side first: GEMM kernels run a short one (co = 16) slowly.
struct EigenProduct {
  template <class T>
  void operator()(const T* dy_n, const T* col, Index co, Index k, Index hw, bool first, T* p) const {
    MapM<T> P(p, k, co);
    if (first) P.setZero();
    P.noalias() += CMapM<T>(col, k, hw) * CMapM<T>(dy_n, co, hw).transpose();
  }
};

// dw = sum_n dy_n col_n^T, db = sum of dy over n, y, x. The batch is cut into fixed groups
// of kBatchGroup images, each summed in image order into its own partial (in parallel), and
// the partials are added in group order by sum_rows: the order depends on the batch size
// only, never on the thread count or on a split of the batch across processes. `product`
// computes one image's term on the calling thread alone.
template <class T, class Product = EigenProduct>
void conv2d_backward_weights(const ConvDims& d, const T* x, const T* dy, T* dw, T* db, Product product = {}) {
  const Index k = d.ci * 9, hw = d.h * d.w;
  const Index groups = (d.n + kBatchGroup - 1) / kBatchGroup, size = d.co * k;
  std::vector<T> partial(static_cast<std::size_t>(groups * size));      // [groups, ci * 9, co]
  std::vector<T> bias_partial(static_cast<std::size_t>(groups * d.co));  // [groups, co]
#pragma omp parallel
  {
    std::vector<T> col(static_cast<std::size_t>(k * hw));
#pragma omp for schedule(static)
    for (Index g = 0; g < groups; ++g) {
      for (Index n = g * kBatchGroup; n < std::min(d.n, (g + 1) * kBatchGroup); ++n) {
        im2col(d, x + n * d.ci * hw, col.data());
        product(dy + n * d.co * hw, col.data(), d.co, k, hw, n == g * kBatchGroup, partial.data() + g * size);
      }
      for (Index o = 0; db && o < d.co; ++o) {
        T s = 0;
        for (Index n = g * kBatchGroup; n < std::min(d.n, (g + 1) * kBatchGroup); ++n)
          for (Index i = 0; i < hw; ++i) s += dy[(n * d.co + o) * hw + i];
        bias_partial[static_cast<std::size_t>(g * d.co + o)] = s;
      }
    }
  }
  std::vector<T> dw_t(static_cast<std::size_t>(size));  // [ci * 9, co]
  sum_rows(partial.data(), groups, size, dw_t.data());
  MapM<T>(dw, d.co, k) = CMapM<T>(dw_t.data(), k, d.co).transpose();
  if (db) sum_rows(bias_partial.data(), groups, d.co, db);
}

template <class T>
void relu_forward(Index count, const T* x, T* y) {
#pragma omp parallel for schedule(static)
  for (Index i = 0; i < count; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

template <class T>
void relu_backward(Index count, const T* x, const T* dy, T* dx) {
#pragma omp parallel for schedule(static)
  for (Index i = 0; i < count; ++i) dx[i] = x[i] > T(0) ? dy[i] : T(0);
}

struct PoolDims {
  Index n, c, h, w;  // input; output is h/2 x w/2
};

// which[o] = the winner's place in its window, 2 * row + column (first maximum on ties): one
// byte per output, a quarter of a flat index's memory.
template <class T>
void maxpool2x2_forward(const PoolDims& d, const T* x, T* y, std::uint8_t* which) {
  const Index oh = d.h / 2, ow = d.w / 2;
#pragma omp parallel for schedule(static)
  for (Index p = 0; p < d.n * d.c; ++p)
    for (Index i = 0; i < oh; ++i) {
      const T* top = x + (p * d.h + 2 * i) * d.w;
      const T* bottom = top + d.w;
      const Index o = (p * oh + i) * ow;
      for (Index j = 0; j < ow; ++j) {
        // Arithmetic, not branches: which input wins is data, and mispredicts.
        T best = top[2 * j];
        unsigned k = 0;
        const T rest[3] = {top[2 * j + 1], bottom[2 * j], bottom[2 * j + 1]};
        for (unsigned q = 0; q < 3; ++q) {
          const unsigned more = rest[q] > best;
          k += more * (q + 1 - k);
          best = more ? rest[q] : best;
        }
        y[o + j] = best;
        which[o + j] = static_cast<std::uint8_t>(k);
      }
    }
}

template <class T>
void maxpool2x2_backward(const PoolDims& d, const T* dy, const std::uint8_t* which, T* dx) {
  const Index oh = d.h / 2, ow = d.w / 2;
#pragma omp parallel for schedule(static)
  for (Index p = 0; p < d.n * d.c; ++p) {
    T* plane = dx + p * d.h * d.w;
    std::fill(plane, plane + d.h * d.w, T(0));
    for (Index i = 0; i < oh; ++i) {
      T* const rows[2] = {plane + 2 * i * d.w, plane + (2 * i + 1) * d.w};
      const Index o = (p * oh + i) * ow;
      for (Index j = 0; j < ow; ++j) {  // windows do not overlap: one gradient per input
        const unsigned k = which[o + j];
        rows[k >> 1][2 * j + (k & 1)] = dy[o + j];
      }
    }
  }
}

struct BnDims {
  Index n, c, hw;
};

// Per channel, summed in (n, i) order: mean and biased variance (two passes, for accuracy).
// Per-channel sums in double, one partial per group of kBatchGroup images (plus the group's
// image count, so the divisor is the whole batch's), groups summed in order by sum_rows.
template <class T, class PerImage>
void batchnorm_group_sums(const BnDims& d, Index per_channel, std::vector<double>& total, PerImage&& value) {
  const Index groups = (d.n + kBatchGroup - 1) / kBatchGroup, width = per_channel * d.c + 1;
  std::vector<double> part(static_cast<std::size_t>(groups * width));  // [groups, per_channel * c + 1]
#pragma omp parallel for schedule(static)
  for (Index c = 0; c < d.c; ++c)
    for (Index g = 0; g < groups; ++g) {
      double s[2] = {0, 0};
      for (Index n = g * kBatchGroup; n < std::min(d.n, (g + 1) * kBatchGroup); ++n)
        for (Index i = 0; i < d.hw; ++i) value(c, (n * d.c + c) * d.hw + i, s);
      for (Index k = 0; k < per_channel; ++k) part[static_cast<std::size_t>(g * width + k * d.c + c)] = s[k];
    }
  for (Index g = 0; g < groups; ++g)
    part[static_cast<std::size_t>(g * width + width - 1)] = static_cast<double>(std::min(d.n, (g + 1) * kBatchGroup) - g * kBatchGroup);
  total.resize(static_cast<std::size_t>(width));
  sum_rows(part.data(), groups, width, total.data());
  check(total.back() > 0, "batch norm: the batch has no images");
}

// Batch mean and biased variance per channel, two passes (mean, then squared deviations).
template <class T>
void batchnorm_stats(const BnDims& d, const T* x, T* mean, T* var) {
  std::vector<double> sum, sq;
  batchnorm_group_sums<T>(d, 1, sum, [&](Index, Index at, double* s) { s[0] += x[at]; });
  const double m = sum.back() * static_cast<double>(d.hw);
  batchnorm_group_sums<T>(d, 1, sq, [&](Index c, Index at, double* s) {
    const double v = x[at] - sum[static_cast<std::size_t>(c)] / m;
    s[0] += v * v;
  });
  for (Index c = 0; c < d.c; ++c) {
    mean[c] = static_cast<T>(sum[static_cast<std::size_t>(c)] / m);
    var[c] = static_cast<T>(sq[static_cast<std::size_t>(c)] / m);
  }
}

// y = gamma (x - mean) / sqrt(var + eps) + beta, with whichever statistics are given.
template <class T>
void batchnorm_apply(const BnDims& d, const T* x, const T* gamma, const T* beta, const T* mean, const T* var,
                     T eps, T* y) {
#pragma omp parallel for schedule(static)
  for (Index p = 0; p < d.n * d.c; ++p) {
    const Index c = p % d.c;
    const T inv = T(1) / std::sqrt(var[c] + eps);
    for (Index i = 0; i < d.hw; ++i) y[p * d.hw + i] = gamma[c] * (x[p * d.hw + i] - mean[c]) * inv + beta[c];
  }
}

// Training-mode backward: with xhat = (x - mean) inv and M = N*HW,
// dx = gamma inv (dy - mean(dy) - xhat mean(dy xhat)), dgamma = sum(dy xhat), dbeta = sum(dy).
// `batch_stats` false gives the eval-mode backward (statistics are constants): dx = gamma inv dy,
// each its own product; without dgamma and dbeta nothing is summed.
template <class T>
void batchnorm_backward(const BnDims& d, const T* x, const T* dy, const T* gamma, const T* mean, const T* var,
                        T eps, bool batch_stats, T* dx, T* dgamma, T* dbeta) {
  std::vector<double> sums;  // [sum dy per channel, sum dy xhat per channel, images]
  const bool summed = batch_stats || dgamma || dbeta;
  if (summed)
    batchnorm_group_sums<T>(d, 2, sums, [&](Index c, Index at, double* s) {
      const T inv = T(1) / std::sqrt(var[c] + eps);
      s[0] += dy[at];
      s[1] += dy[at] * (x[at] - mean[c]) * inv;
    });
  const double m = summed ? sums.back() * static_cast<double>(d.hw) : 1;
#pragma omp parallel for schedule(static)
  for (Index c = 0; c < d.c; ++c) {
    const T inv = T(1) / std::sqrt(var[c] + eps);
    const double sdy = summed ? sums[static_cast<std::size_t>(c)] : 0, sdyx = summed ? sums[static_cast<std::size_t>(d.c + c)] : 0;
    if (dgamma) dgamma[c] = static_cast<T>(sdyx);
    if (dbeta) dbeta[c] = static_cast<T>(sdy);
    const T mdy = batch_stats ? static_cast<T>(sdy / m) : T(0);
    const T mdyx = batch_stats ? static_cast<T>(sdyx / m) : T(0);
    for (Index n = 0; n < d.n; ++n)
      for (Index i = 0; i < d.hw; ++i) {
        const Index at = (n * d.c + c) * d.hw + i;
        if (!batch_stats) {
          dx[at] = gamma[c] * inv * dy[at];
          continue;
        }
        const T xhat = (x[at] - mean[c]) * inv;
        dx[at] = gamma[c] * inv * (dy[at] - mdy - xhat * mdyx);
      }
  }
}

struct LinearDims {
  Index n, in, out;
};

template <class T>
void linear_forward(const LinearDims& d, const T* x, const T* w, const T* b, T* y) {
  MapM<T> Y(y, d.n, d.out);
  Y.noalias() = CMapM<T>(x, d.n, d.in) * CMapM<T>(w, d.out, d.in).transpose();
  if (b)
    for (Index i = 0; i < d.n; ++i)
      for (Index o = 0; o < d.out; ++o) Y(i, o) += b[o];
}

template <class T>
void linear_backward_data(const LinearDims& d, const T* dy, const T* w, T* dx) {
  MapM<T>(dx, d.n, d.in).noalias() = CMapM<T>(dy, d.n, d.out) * CMapM<T>(w, d.out, d.in);
}

template <class T>
void linear_backward_weights(const LinearDims& d, const T* x, const T* dy, T* dw, T* db) {
  MapM<T>(dw, d.out, d.in).noalias() = CMapM<T>(dy, d.n, d.out).transpose() * CMapM<T>(x, d.n, d.in);
  if (db)
    for (Index o = 0; o < d.out; ++o) {
      T s = 0;
      for (Index i = 0; i < d.n; ++i) s += dy[i * d.out + o];
      db[o] = s;
    }
}

template <class T>
void global_avg_pool_forward(Index planes, Index hw, const T* x, T* y) {
#pragma omp parallel for schedule(static)
  for (Index p = 0; p < planes; ++p) {
    T s = 0;
    for (Index i = 0; i < hw; ++i) s += x[p * hw + i];
    y[p] = s / static_cast<T>(hw);
  }
}

template <class T>
void global_avg_pool_backward(Index planes, Index hw, const T* dy, T* dx) {
#pragma omp parallel for schedule(static)
  for (Index p = 0; p < planes; ++p)
    for (Index i = 0; i < hw; ++i) dx[p * hw + i] = dy[p] / static_cast<T>(hw);
}

// Numerically stable: subtract each row's maximum before exp. Returns the mean loss.
template <class T>
double softmax_cross_entropy_forward(Index n, Index k, const T* logits, const std::int64_t* labels, T* probs) {
  double loss = 0;
  for (Index i = 0; i < n; ++i) {
    const T* z = logits + i * k;
    const T zmax = *std::max_element(z, z + k);
    double sum = 0;
    for (Index j = 0; j < k; ++j) sum += std::exp(static_cast<double>(z[j] - zmax));
    for (Index j = 0; j < k; ++j) probs[i * k + j] = static_cast<T>(std::exp(static_cast<double>(z[j] - zmax)) / sum);
    loss += std::log(sum) - static_cast<double>(z[labels[i]] - zmax);
  }
  return loss / static_cast<double>(n);
}

template <class T>
void softmax_cross_entropy_backward(Index n, Index k, const T* probs, const std::int64_t* labels, T dloss, T* dlogits) {
  const T scale = dloss / static_cast<T>(n);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < k; ++j)
      dlogits[i * k + j] = scale * (probs[i * k + j] - (j == labels[i] ? T(1) : T(0)));
}

constexpr double kCosineEps = 1e-8;  // PyTorch's F.cosine_similarity default

// Sums over one row of a and b, each in element order, in double: a.b, |a|^2, |b|^2 for the
// cosine and |a - b|^2 for the MSE, from one pass over the row; r: the sums of the row's
// elements before these.
struct RowSums {
  double ab = 0, aa = 0, bb = 0, ee = 0;
};
template <class T>
RowSums row_sums(Index d, const T* a, const T* b, bool with_mse, RowSums r = {}) {
  for (Index j = 0; j < d; ++j) {
    const double u = a[j], v = b[j];
    r.ab += u * v;
    r.aa += u * u;
    r.bb += v * v;
    if (with_mse) {
      const double e = u - v;
      r.ee += e * e;
    }
  }
  return r;
}

// row_sums of eight rows at once, row k in lane k of AVX-512 vectors: each row still summed in
// element order, so the same bits (a row alone is a chain of dependent adds, latency-bound).
// Only where detail::cpu_has_avx512(); row_sums_avx512.cpp.
constexpr Index kSumRows = 8;
void row_sums8_avx512(Index d, const float* const a[kSumRows], const float* const b[kSumRows], bool with_mse,
                      RowSums out[kSumRows]);

// row_sums of rows [i, i + kSumRows) of [n, d] matrices, fewer at the end.
template <class T>
void row_sums_group(Index n, Index d, const T* a, const T* b, bool with_mse, Index i, RowSums out[kSumRows]) {
  const Index m = std::min(kSumRows, n - i);
  if constexpr (std::is_same_v<T, float>)
    if (detail::cpu_has_avx512()) {
      const float* pa[kSumRows];
      const float* pb[kSumRows];
      for (Index k = 0; k < kSumRows; ++k) {  // past the end: row i again, its sums left unread
        pa[k] = a + (i + (k < m ? k : 0)) * d;
        pb[k] = b + (i + (k < m ? k : 0)) * d;
      }
      row_sums8_avx512(d, pa, pb, with_mse, out);
      return;
    }
  for (Index k = 0; k < m; ++k) out[k] = row_sums(d, a + (i + k) * d, b + (i + k) * d, with_mse);
}

// f(i, the row_sums of row i) for every row of [n, d] matrices a and b, in parallel over
// groups of rows.
template <class T, class F>
void for_each_row_sums(Index n, Index d, const T* a, const T* b, bool with_mse, F f) {
#pragma omp parallel for schedule(static)
  for (Index i0 = 0; i0 < n; i0 += kSumRows) {
    RowSums s[kSumRows];
    row_sums_group(n, d, a, b, with_mse, i0, s);
    for (Index i = i0; i < std::min(n, i0 + kSumRows); ++i) f(i, s[i - i0]);
  }
}

// Per row: cos = a.b / (max(|a|, eps) max(|b|, eps)), mse = |a - b|^2 / d.
template <class T>
void distance_forward(Index n, Index d, const T* a, const T* b, T* cos, T* mse) {
  for_each_row_sums(n, d, a, b, true, [&](Index i, const RowSums& s) {
    cos[i] = static_cast<T>(s.ab / (std::max(std::sqrt(s.aa), kCosineEps) * std::max(std::sqrt(s.bb), kCosineEps)));
    mse[i] = static_cast<T>(s.ee / static_cast<double>(d));
  });
}

// da = dcos d cos/da + dmse d mse/da, where d cos/da = b / (|a||b|) - cos a / |a|^2 (the second
// term vanishes where |a| is clamped) and d mse/da = 2 (a - b) / d; db likewise.
template <class T>
void distance_backward(Index n, Index d, const T* a, const T* b, const T* dcos, const T* dmse, T* da, T* db) {
  for_each_row_sums(n, d, a, b, false, [&](Index i, const RowSums& s) {
    const double na = std::sqrt(s.aa), nb = std::sqrt(s.bb);
    const double ca = std::max(na, kCosineEps), cb = std::max(nb, kCosineEps);
    const double cos = s.ab / (ca * cb);
    const double ka = na >= kCosineEps ? cos / (ca * ca) : 0.0, kb = nb >= kCosineEps ? cos / (cb * cb) : 0.0;
    const double g = dcos[i], inv = 1.0 / (ca * cb);
    const T gm = T(2) * dmse[i] / static_cast<T>(d);
    for (Index j = 0; j < d; ++j) {
      const double u = a[i * d + j], v = b[i * d + j];
      const T e = a[i * d + j] - b[i * d + j];
      if (da) da[i * d + j] = static_cast<T>(g * (v * inv - ka * u)) + gm * e;
      if (db) db[i * d + j] = static_cast<T>(g * (u * inv - kb * v)) + -gm * e;
    }
  });
}

}  // namespace morphokd::ref
