#include "morphokd/method/fgsm.hpp"

#include <algorithm>
#include <cmath>

#include "morphokd/error.hpp"

namespace morphokd::method {

FgsmDirection parse_direction(const std::string& text) {
  if (text == "raise") return FgsmDirection::raise;
  if (text == "lower") return FgsmDirection::lower;
  fail("--direction: unknown " + quote(text) + " (expected raise or lower)");
}

void check_eps(double eps, const std::string& option) {
  if (!(eps >= 0.0 && eps <= 1.0)) fail(option + ": epsilon must be in [0, 1] (pixel units of [0, 1]), got " + std::to_string(eps));
}

void fgsm_step(const Tensor& x, const Tensor& grad, float eps, FgsmDirection direction, Tensor& x_adv) {
  check_shape(grad, x.shape(), "fgsm gradient");
  check_shape(x_adv, x.shape(), "fgsm output");
  const float step = direction == FgsmDirection::raise ? eps : -eps;
  const float* xs = x.data();
  const float* g = grad.data();
  float* out = x_adv.data();
  for (Index i = 0, n = x.numel(); i < n; ++i) {
    const float sign = g[i] > 0 ? 1.0f : g[i] < 0 ? -1.0f : 0.0f;
    out[i] = std::clamp(xs[i] + step * sign, 0.0f, 1.0f);
  }
}

}  // namespace morphokd::method
