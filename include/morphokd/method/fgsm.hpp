// FGSM (METHOD.md, paper Fig. 11-12): one signed-gradient step on the raw cell pixels,
//   raise: x_adv = clip(x + eps sign(g), 0, 1)    lower: x_adv = clip(x - eps sign(g), 0, 1)
// with g the gradient of the objective (anomaly score, or the distillation distance in
// adversarial training) with respect to x in [0, 1]; sign(0) = 0, as torch.sign.
#pragma once
#include <string>

#include "morphokd/tensor.hpp"

namespace morphokd::method {

enum class FgsmDirection { raise, lower };

// "raise" | "lower"; Error naming --direction otherwise.
FgsmDirection parse_direction(const std::string& text);
// eps in [0, 1] (pixel units of [0, 1]); Error naming `option` otherwise (NaN included).
void check_eps(double eps, const std::string& option);

// x, grad, x_adv: same shape; x_adv may be x itself.
void fgsm_step(const Tensor& x, const Tensor& grad, float eps, FgsmDirection direction, Tensor& x_adv);

}  // namespace morphokd::method
