#include "morphokd/method/localize.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "morphokd/error.hpp"
#include "morphokd/random.hpp"

namespace morphokd::method {

MapMethod parse_map_method(const std::string& text) {
  if (text == "grad") return MapMethod::grad;
  if (text == "smoothgrad") return MapMethod::smoothgrad;
  if (text == "gbp") return MapMethod::gbp;
  fail("--method: unknown " + quote(text) + " (expected grad, smoothgrad or gbp)");
}

void check_map_options(int n, double sigma_noise, double blur_sigma) {
  if (n < 1) fail("--n: SmoothGrad needs at least one noisy copy, got " + std::to_string(n));
  if (!(sigma_noise >= 0 && std::isfinite(sigma_noise))) fail("--sigma-noise must be a finite number >= 0");
  if (!(blur_sigma >= 0 && std::isfinite(blur_sigma))) fail("--blur-sigma must be a finite number >= 0");
}

double normal01(std::uint64_t seed, std::uint64_t i) {
  const double u1 = 1.0 - uniform01(seed, 2 * i), u2 = uniform01(seed, 2 * i + 1);  // u1 in (0, 1]
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

void smoothgrad(const Tensor& cells, std::span<const std::int64_t> ids, int n, double sigma_noise, std::uint64_t seed,
                const GradientFn& gradient, Tensor& grad) {
  check_map_options(n, sigma_noise, 0.0);
  check(static_cast<Index>(ids.size()) == cells.dim(0), "smoothgrad: one id per cell");
  const Index cn = cells.dim(0), per = cells.numel() / cn;
  std::vector<double> spread(static_cast<std::size_t>(cn));
  for (Index i = 0; i < cn; ++i) {
    const auto [lo, hi] = std::minmax_element(cells.data() + i * per, cells.data() + (i + 1) * per);
    spread[static_cast<std::size_t>(i)] = sigma_noise * (*hi - *lo);
  }
  const std::uint64_t base = splitmix64(seed ^ 0x534D4F4F5448ull);  // "SMOOTH"
  Tensor noisy = Tensor::empty(cells.shape()), g;
  std::vector<double> sum;
  for (int k = 0; k < n; ++k) {
    for (Index i = 0; i < cn; ++i) {
      const std::uint64_t stream = base + static_cast<std::uint64_t>(ids[static_cast<std::size_t>(i)]) * static_cast<std::uint64_t>(n) + static_cast<std::uint64_t>(k);
      for (Index j = 0; j < per; ++j)
        noisy.data()[i * per + j] = static_cast<float>(cells.data()[i * per + j] + spread[static_cast<std::size_t>(i)] * normal01(stream, static_cast<std::uint64_t>(j)));
    }
    gradient(noisy, g);
    if (sum.empty()) sum.assign(static_cast<std::size_t>(g.numel()), 0.0);
    for (Index j = 0; j < g.numel(); ++j) sum[static_cast<std::size_t>(j)] += g.data()[j];
  }
  fit_shape(grad, g.shape());
  for (Index j = 0; j < g.numel(); ++j) grad.data()[j] = static_cast<float>(sum[static_cast<std::size_t>(j)] / n);
}

void saliency(const Tensor& grad, Tensor& maps) {
  check_rank(grad, 4, "saliency gradient");
  const Index n = grad.dim(0), c = grad.dim(1), hw = grad.dim(2) * grad.dim(3);
  const Shape out{n, grad.dim(2), grad.dim(3)};
  fit_shape(maps, out);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < hw; ++j) {
      float s = 0;
      for (Index k = 0; k < c; ++k) s += std::abs(grad.data()[(i * c + k) * hw + j]);
      maps.data()[i * hw + j] = s;
    }
}

namespace {
// Mirrored index, the edge pixel not repeated (OpenCV's BORDER_REFLECT_101).
Index mirror(Index i, Index n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}
}  // namespace

void postprocess_map(const float* map, Index h, Index w, double percentile, double blur_sigma, float* out) {
  check(percentile > 0 && percentile <= 100, "percentile must be in (0, 100]");
  check_map_options(1, 0.0, blur_sigma);
  const Index hw = h * w;
  std::vector<float> sorted(map, map + hw);
  std::sort(sorted.begin(), sorted.end());
  const double pos = percentile / 100.0 * static_cast<double>(hw - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double scale = sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
  std::vector<double> img(static_cast<std::size_t>(hw));
  for (Index j = 0; j < hw; ++j) img[static_cast<std::size_t>(j)] = scale > 0 ? std::clamp(map[j] / scale, 0.0, 1.0) : 0.0;
  if (blur_sigma > 0) {  // separable: rows, then columns
    const auto r = static_cast<Index>(std::ceil(4 * blur_sigma));
    std::vector<double> k(static_cast<std::size_t>(2 * r + 1));
    double total = 0;
    for (Index d = -r; d <= r; ++d) total += k[static_cast<std::size_t>(d + r)] = std::exp(-0.5 * static_cast<double>(d * d) / (blur_sigma * blur_sigma));
    for (double& v : k) v /= total;
    std::vector<double> tmp(img.size());
    for (int pass = 0; pass < 2; ++pass) {
      for (Index y = 0; y < h; ++y)
        for (Index x = 0; x < w; ++x) {
          double s = 0;
          for (Index d = -r; d <= r; ++d)
            s += k[static_cast<std::size_t>(d + r)] *
                 (pass == 0 ? img[static_cast<std::size_t>(y * w + mirror(x + d, w))] : img[static_cast<std::size_t>(mirror(y + d, h) * w + x)]);
          tmp[static_cast<std::size_t>(y * w + x)] = s;
        }
      img.swap(tmp);
    }
  }
  for (Index j = 0; j < hw; ++j) out[j] = static_cast<float>(img[static_cast<std::size_t>(j)]);
}

}  // namespace morphokd::method
