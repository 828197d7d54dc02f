// Anomaly localization maps (METHOD.md, paper Fig. 14): where a cell's score comes from.
//   raw map   |d score / d x| per pixel of the gray cell (gray: the channel copies' gradients
//             summed first), or MKD's  sum_c |d score / d x_c|  over the three channel copies
//   methods   grad (vanilla), smoothgrad (gradient averaged over n noisy copies of the cell,
//             noise sd = sigma_noise * (max - min) of the cell), gbp (guided backpropagation:
//             the networks' ReLU backward rule, nn::Module::set_guided)
//   post      divide by the map's 99th percentile, clip to [0, 1], Gaussian blur
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "morphokd/tensor.hpp"

namespace morphokd::method {

enum class MapMethod { grad, smoothgrad, gbp };
MapMethod parse_map_method(const std::string& text);  // Error naming --method

// Errors naming the option: --n >= 1; --sigma-noise and --blur-sigma finite and >= 0.
void check_map_options(int n, double sigma_noise, double blur_sigma);

// Standard normal value i of stream `seed` (Box-Muller on two counter-based uniforms).
double normal01(std::uint64_t seed, std::uint64_t i);

// The gradient of the score of raw cells [N, 1, H, W]: grad becomes [N, C, H, W].
using GradientFn = std::function<void(const Tensor& cells, Tensor& grad)>;

// SmoothGrad: mean gradient over n noisy copies of each cell (not clipped, as MKD). Copy k of
// cell i draws its noise from stream (seed, ids[i] * n + k), so a cell's map does not
// depend on the batch it came in. `grad` becomes what `gradient` gives, averaged.
void smoothgrad(const Tensor& cells, std::span<const std::int64_t> ids, int n, double sigma_noise, std::uint64_t seed,
                const GradientFn& gradient, Tensor& grad);

// Raw maps from gradients [N, C, H, W]: sum_c |g_c| -> maps [N, H, W].
void saliency(const Tensor& grad, Tensor& maps);

// One map [H, W] -> out [H, W]: / its `percentile`-th percentile (linear interpolation, as
// numpy), clipped to [0, 1], then blurred with a Gaussian of `blur_sigma` pixels (radius
// ceil(4 sigma), mirrored border; 0: no blur). An all-zero map stays zero.
void postprocess_map(const float* map, Index h, Index w, double percentile, double blur_sigma, float* out);

}  // namespace morphokd::method
