#include "morphokd/data/transform.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "morphokd/error.hpp"
#include "morphokd_build_config.hpp"

#if MORPHOKD_HAS_OPENCV
#include <opencv2/imgproc.hpp>
#endif

namespace morphokd::data {

namespace {

constexpr double kMinCellStd = 1e-6;  // a blank cell stays finite
constexpr double kImagenetMean[3] = {0.485, 0.456, 0.406}, kImagenetStd[3] = {0.229, 0.224, 0.225};

// In place on every [H, W] plane; values are rounded to 8 bits first, as CLAHE works on them.
void equalise(Tensor& cells) {
#if MORPHOKD_HAS_OPENCV
  const Index n = cells.numel() / (cells.dim(2) * cells.dim(3));
  const int h = static_cast<int>(cells.dim(2)), w = static_cast<int>(cells.dim(3));
  // One CLAHE object per thread would do; a serial loop keeps it simple and costs ~20 us a cell.
  const cv::Ptr<cv::CLAHE> clahe = cv::createCLAHE(2.0, cv::Size(8, 8));
  cv::Mat in(h, w, CV_8U), out;
  for (Index i = 0; i < n; ++i) {
    float* c = cells.data() + i * h * w;
    for (int j = 0; j < h * w; ++j) in.data[j] = static_cast<std::uint8_t>(std::lround(std::clamp(c[j], 0.0f, 1.0f) * 255.0f));
    clahe->apply(in, out);
    for (int j = 0; j < h * w; ++j) c[j] = static_cast<float>(out.data[j]) / 255.0f;
  }
#else
  (void)cells;
  fail("--input-norm clahe needs a build with MORPHOKD_WITH_OPENCV=ON");
#endif
}

// Mean and (population, floored) standard deviation of one cell, as "image" uses them.
std::pair<double, double> cell_stats(const float* c, Index per) {
  double s = 0, q = 0;
  for (Index j = 0; j < per; ++j) s += c[j];
  const double mean = s / static_cast<double>(per);
  for (Index j = 0; j < per; ++j) q += (c[j] - mean) * (c[j] - mean);
  return {mean, std::max(std::sqrt(q / static_cast<double>(per)), kMinCellStd)};
}

}  // namespace

InputTransform InputTransform::parse(const std::string& spec) {
  InputTransform t;
  std::string kind = spec;
  if (kind.rfind("clahe", 0) == 0) {
    t.clahe = true;
    kind = kind == "clahe" ? "none" : kind.rfind("clahe+", 0) == 0 ? kind.substr(6) : kind;
  }
  if (kind != "none" && kind != "dataset" && kind != "image" && kind != "imagenet")
    fail("--input-norm: unknown " + quote(spec) + " (expected [clahe+]none, dataset, image or imagenet)");
  t.kind = kind;
#if !MORPHOKD_HAS_OPENCV
  if (t.clahe) fail("--input-norm " + spec + ": CLAHE needs a build with MORPHOKD_WITH_OPENCV=ON");
#endif
  return t;
}

InputTransform InputTransform::make(const std::string& spec, const Tensor& train_cells) {
  InputTransform t = parse(spec);
  if (t.kind != "dataset") return t;
  Tensor cells = train_cells.clone();
  if (t.clahe) equalise(cells);
  double s = 0, q = 0;
  for (float v : cells.span()) s += v;
  t.mean = s / static_cast<double>(cells.numel());
  for (float v : cells.span()) q += (v - t.mean) * (v - t.mean);
  t.std = std::sqrt(q / static_cast<double>(cells.numel()));
  check(t.std > 0, "--input-norm dataset: the training images are constant");
  return t;
}

void InputTransform::apply(Tensor& cells) const {
  if (clahe) equalise(cells);
  if (kind == "none" || kind == "imagenet") return;
  const Index n = cells.dim(0), per = cells.numel() / n;
  float* x = cells.data();
#pragma omp parallel for schedule(static)
  for (Index i = 0; i < n; ++i) {
    float* c = x + i * per;
    const auto [mean, sd] = kind == "image" ? cell_stats(c, per) : std::pair{this->mean, this->std};
    for (Index j = 0; j < per; ++j) c[j] = static_cast<float>((c[j] - mean) / sd);
  }
}

void InputTransform::backward(const Tensor& raw, Tensor& grad) const {
  check(raw.rank() == 4 && raw.dim(1) == 1 && grad.rank() == 4 && grad.dim(0) == raw.dim(0) && grad.dim(2) == raw.dim(2) &&
            grad.dim(3) == raw.dim(3),
        "input transform backward: gradient and cells differ in shape");
  if (kind == "none" || kind == "imagenet") return;
  Tensor cells = raw.clone();
  if (clahe) equalise(cells);
  const Index n = cells.dim(0), per = cells.numel() / n, planes = grad.dim(1);
#pragma omp parallel for schedule(static)
  for (Index i = 0; i < n; ++i) {
    const float* x = cells.data() + i * per;
    const auto [mean, sd] = kind == "image" ? cell_stats(x, per) : std::pair{this->mean, this->std};
    const bool floored = kind == "image" && sd == kMinCellStd;
    for (Index p = 0; p < planes; ++p) {
      float* g = grad.data() + (i * planes + p) * per;
      // image: z = (x - mean) / sd  =>  dx = (g - mean(g) - z mean(g z)) / sd (sd constant when floored)
      double gm = 0, gz = 0;
      if (kind == "image") {
        for (Index j = 0; j < per; ++j) {
          gm += g[j];
          gz += g[j] * ((x[j] - mean) / sd);
        }
        gm /= static_cast<double>(per);
        gz = floored ? 0.0 : gz / static_cast<double>(per);
      }
      for (Index j = 0; j < per; ++j) g[j] = static_cast<float>((g[j] - gm - ((x[j] - mean) / sd) * gz) / sd);
    }
  }
}

void InputTransform::to_rgb(const Tensor& gray, Tensor& rgb) const {
  const Index n = gray.dim(0), hw = gray.dim(2) * gray.dim(3);
  fit_shape(rgb, {n, 3, gray.dim(2), gray.dim(3)});
  const bool imagenet = kind == "imagenet";
  for (Index i = 0; i < n; ++i)
    for (Index c = 0; c < 3; ++c) {
      const float m = imagenet ? static_cast<float>(kImagenetMean[c]) : 0.0f;
      const float inv = imagenet ? static_cast<float>(1.0 / kImagenetStd[c]) : 1.0f;
      const float* src = gray.data() + i * hw;
      float* dst = rgb.data() + (i * 3 + c) * hw;
      for (Index j = 0; j < hw; ++j) dst[j] = (src[j] - m) * inv;
    }
}


void InputTransform::to_rgb_backward(const Tensor& drgb, Tensor& dgray, bool per_channel) const {
  check(drgb.rank() == 4 && drgb.dim(1) == 3, "to_rgb backward: the gradient must be [N, 3, H, W]");
  const Index n = drgb.dim(0), hw = drgb.dim(2) * drgb.dim(3);
  const Shape out{n, per_channel ? 3 : 1, drgb.dim(2), drgb.dim(3)};
  fit_shape(dgray, out);
  const bool imagenet = kind == "imagenet";
  for (Index i = 0; i < n; ++i)
    for (Index c = 0; c < 3; ++c) {
      const float inv = imagenet ? static_cast<float>(1.0 / kImagenetStd[c]) : 1.0f;
      const float* src = drgb.data() + (i * 3 + c) * hw;
      float* dst = dgray.data() + (per_channel ? i * 3 + c : i) * hw;
      for (Index j = 0; j < hw; ++j) dst[j] = per_channel || c == 0 ? src[j] * inv : dst[j] + src[j] * inv;
    }
}

}  // namespace morphokd::data
