#include "morphokd/pipeline/figures.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd_build_config.hpp"

#if MORPHOKD_HAS_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace morphokd::pipeline {

bool figures_available() { return MORPHOKD_HAS_OPENCV != 0; }

#if MORPHOKD_HAS_OPENCV
namespace {

constexpr int kScale = 4, kCaption = 22;
const cv::Scalar kWhite(255, 255, 255), kBlack(0, 0, 0);

cv::Mat gray_bgr(const float* plane, Index h, Index w) {
  cv::Mat g(static_cast<int>(h), static_cast<int>(w), CV_8U);
  for (Index j = 0; j < h * w; ++j) g.data[j] = static_cast<std::uint8_t>(std::lround(std::clamp(plane[j], 0.0f, 1.0f) * 255.0f));
  cv::Mat big, bgr;
  cv::resize(g, big, {}, kScale, kScale, cv::INTER_NEAREST);
  cv::cvtColor(big, bgr, cv::COLOR_GRAY2BGR);
  return bgr;
}

cv::Mat overlay(const float* cell, const float* map, Index h, Index w) {
  cv::Mat heat;
  cv::applyColorMap(gray_bgr(map, h, w), heat, cv::COLORMAP_JET);
  cv::Mat out;
  cv::addWeighted(gray_bgr(cell, h, w), 0.5, heat, 0.5, 0.0, out);
  return out;
}

// The image with a white caption strip below it.
cv::Mat captioned(const cv::Mat& img, const std::string& caption) {
  cv::Mat out(img.rows + kCaption, img.cols, CV_8UC3, kWhite);
  img.copyTo(out(cv::Rect(0, 0, img.cols, img.rows)));
  cv::putText(out, caption, {4, img.rows + 16}, cv::FONT_HERSHEY_SIMPLEX, 0.45, kBlack, 1, cv::LINE_AA);
  return out;
}

void write_png(const std::string& path, const cv::Mat& img) {
  std::vector<std::uint8_t> buf;
  if (!cv::imencode(".png", img, buf)) fail(path + ": PNG encoding failed");
  write_file_atomic(path, std::as_bytes(std::span<const std::uint8_t>(buf)));
}

}  // namespace

void write_overlay_png(const std::string& path, const float* cell, const float* map, Index h, Index w) {
  write_png(path, overlay(cell, map, h, w));
}

void write_map_grid_png(const std::string& path, const Tensor& cells, const Tensor& maps,
                        const std::vector<std::string>& captions, int columns) {
  check(cells.rank() == 3 && maps.shape() == cells.shape() && captions.size() == static_cast<std::size_t>(cells.dim(0)) &&
            columns >= 1 && cells.dim(0) >= 1,
        "map grid: cells, maps and captions must match");
  const Index n = cells.dim(0), h = cells.dim(1), w = cells.dim(2);
  const int tile_w = static_cast<int>(2 * w * kScale), tile_h = static_cast<int>(h * kScale) + kCaption, gap = 6;
  const int cols = static_cast<int>(std::min<Index>(columns, n)), rows = static_cast<int>((n + cols - 1) / cols);
  cv::Mat grid(rows * (tile_h + gap), cols * (tile_w + gap), CV_8UC3, kWhite);
  for (Index i = 0; i < n; ++i) {
    cv::Mat pair;
    cv::hconcat(gray_bgr(cells.data() + i * h * w, h, w), overlay(cells.data() + i * h * w, maps.data() + i * h * w, h, w), pair);
    const cv::Mat tile = captioned(pair, captions[static_cast<std::size_t>(i)]);
    const int r = static_cast<int>(i) / cols, c = static_cast<int>(i) % cols;
    tile.copyTo(grid(cv::Rect(c * (tile_w + gap), r * (tile_h + gap), tile_w, tile_h)));
  }
  write_png(path, grid);
}

void write_fgsm_png(const std::string& path, const float* x, const float* grad, const float* x_adv, Index h, Index w,
                    const std::string& caption_before, const std::string& caption_after) {
  std::vector<float> sign(static_cast<std::size_t>(h * w));
  for (Index j = 0; j < h * w; ++j) sign[static_cast<std::size_t>(j)] = grad[j] > 0 ? 1.0f : grad[j] < 0 ? 0.0f : 0.5f;
  cv::Mat row;
  cv::hconcat(std::vector<cv::Mat>{captioned(gray_bgr(x, h, w), caption_before), captioned(gray_bgr(sign.data(), h, w), "sign(gradient)"),
                                   captioned(gray_bgr(x_adv, h, w), caption_after)},
              row);
  write_png(path, row);
}

void write_curve_png(const std::string& path, const std::vector<double>& x, const std::vector<double>& y,
                     const std::string& x_label, const std::string& y_label, const std::string& title) {
  check(!x.empty() && x.size() == y.size(), "curve: x and y must have the same, non-zero length");
  const int width = 640, height = 420, left = 70, right = 20, top = 40, bottom = 60;
  cv::Mat img(height, width, CV_8UC3, kWhite);
  const auto [xlo_it, xhi_it] = std::minmax_element(x.begin(), x.end());
  const double xlo = *xlo_it, xhi = *xhi_it > *xlo_it ? *xhi_it : *xlo_it + 1;
  const double ylo = 0.0, yhi = 1.0;  // AUC-like values
  auto px = [&](double v) { return left + static_cast<int>(std::lround((v - xlo) / (xhi - xlo) * (width - left - right))); };
  auto py = [&](double v) { return height - bottom - static_cast<int>(std::lround((std::clamp(v, ylo, yhi) - ylo) / (yhi - ylo) * (height - top - bottom))); };
  const cv::Scalar grid(220, 220, 220), blue(200, 90, 30);
  char tick[32];
  for (int k = 0; k <= 10; k += 2) {
    const double v = ylo + (yhi - ylo) * k / 10.0;
    cv::line(img, {left, py(v)}, {width - right, py(v)}, grid, 1);
    std::snprintf(tick, sizeof tick, "%.1f", v);
    cv::putText(img, tick, {left - 36, py(v) + 5}, cv::FONT_HERSHEY_SIMPLEX, 0.45, kBlack, 1, cv::LINE_AA);
  }
  for (double v : x) {
    std::snprintf(tick, sizeof tick, "%g", v);
    cv::putText(img, tick, {px(v) - 12, height - bottom + 20}, cv::FONT_HERSHEY_SIMPLEX, 0.4, kBlack, 1, cv::LINE_AA);
  }
  cv::rectangle(img, {left, top}, {width - right, height - bottom}, kBlack, 1);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (i > 0) cv::line(img, {px(x[i - 1]), py(y[i - 1])}, {px(x[i]), py(y[i])}, blue, 2, cv::LINE_AA);
    cv::circle(img, {px(x[i]), py(y[i])}, 4, blue, cv::FILLED, cv::LINE_AA);
  }
  cv::putText(img, title, {left, top - 14}, cv::FONT_HERSHEY_SIMPLEX, 0.55, kBlack, 1, cv::LINE_AA);
  cv::putText(img, x_label, {width / 2 - 60, height - 18}, cv::FONT_HERSHEY_SIMPLEX, 0.5, kBlack, 1, cv::LINE_AA);
  cv::Mat rotated(24, height, CV_8UC3, kWhite);
  cv::putText(rotated, y_label, {height / 2 - 30, 17}, cv::FONT_HERSHEY_SIMPLEX, 0.5, kBlack, 1, cv::LINE_AA);
  cv::rotate(rotated, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
  rotated.copyTo(img(cv::Rect(4, 0, 24, height)));
  write_png(path, img);
}

#else
namespace {
[[noreturn]] void no_opencv(const std::string& path) { fail(path + ": PNG figures need a build with MORPHOKD_WITH_OPENCV=ON"); }
}  // namespace
void write_overlay_png(const std::string& path, const float*, const float*, Index, Index) { no_opencv(path); }
void write_map_grid_png(const std::string& path, const Tensor&, const Tensor&, const std::vector<std::string>&, int) { no_opencv(path); }
void write_fgsm_png(const std::string& path, const float*, const float*, const float*, Index, Index, const std::string&,
                    const std::string&) {
  no_opencv(path);
}
void write_curve_png(const std::string& path, const std::vector<double>&, const std::vector<double>&, const std::string&,
                     const std::string&, const std::string&) {
  no_opencv(path);
}
#endif

}  // namespace morphokd::pipeline
