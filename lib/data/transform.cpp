#include "morphokd/data/transform.hpp"

#include <cmath>

#include "morphokd/error.hpp"

namespace morphokd::data {

InputTransform InputTransform::make(const std::string& kind, const Tensor& train_cells) {
  InputTransform t;
  t.kind = kind;
  if (kind == "none" || kind == "image") return t;
  if (kind != "dataset") fail("--input-norm: unknown '" + kind + "' (expected none, dataset or image)");
  double s = 0, q = 0;
  for (float v : train_cells.span()) s += v;
  t.mean = s / static_cast<double>(train_cells.numel());
  for (float v : train_cells.span()) q += (v - t.mean) * (v - t.mean);
  t.std = std::sqrt(q / static_cast<double>(train_cells.numel()));
  check(t.std > 0, "--input-norm dataset: the training images are constant");
  return t;
}

void InputTransform::apply(Tensor& cells) const {
  if (kind == "none") return;
  const Index n = cells.dim(0), per = cells.numel() / n;
  float* x = cells.data();
#pragma omp parallel for schedule(static)
  for (Index i = 0; i < n; ++i) {
    float* c = x + i * per;
    double mean = this->mean, sd = this->std;
    if (kind == "image") {
      double s = 0, q = 0;
      for (Index j = 0; j < per; ++j) s += c[j];
      mean = s / static_cast<double>(per);
      for (Index j = 0; j < per; ++j) q += (c[j] - mean) * (c[j] - mean);
      sd = std::max(std::sqrt(q / static_cast<double>(per)), 1e-6);  // a blank cell stays finite
    }
    for (Index j = 0; j < per; ++j) c[j] = static_cast<float>((c[j] - mean) / sd);
  }
}

}  // namespace morphokd::data
