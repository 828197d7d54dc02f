#include "morphokd/pipeline/figures.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <tuple>

#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/method/stats.hpp"
#include "morphokd_build_config.hpp"

#if MORPHOKD_HAS_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace morphokd::pipeline {

bool figures_available() { return MORPHOKD_HAS_OPENCV != 0; }

// --- chart geometry: plain arithmetic, the same in a build without OpenCV -------------------
namespace {

constexpr int kWidth = 640, kHeight = 440, kRight = 24, kTop = 44, kBottom = 72;
constexpr int kSlot = 96;        // pixels a category or box gets at least, so its name fits on two lines
constexpr int kDigitWidth = 10;  // FONT_HERSHEY_SIMPLEX at the tick scale (0.45): every digit is 10 px wide
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

double nice_step(double lo, double hi) {
  const double raw = (hi - lo) / 5, magnitude = std::pow(10.0, std::floor(std::log10(raw))), m = raw / magnitude;
  return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * magnitude;
}

// Tick positions with their labels, as many decimals as the step needs.
struct Ticks {
  std::vector<double> at;
  std::vector<std::string> labels;
};
Ticks numeric_ticks(double lo, double hi) {
  Ticks t{nice_ticks(lo, hi), {}};
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(nice_step(lo, hi)) + 1e-9)));
  for (double v : t.at) {
    char b[48];
    std::snprintf(b, sizeof b, "%.*f", decimals, v);
    t.labels.emplace_back(b);
  }
  return t;
}

// [lo, hi] padded by 5% of its span on each side (zero span: 10% of the value, or 0.5 about 0);
// a fixed end (not NaN) replaces the padded one and is included in the span.
std::pair<double, double> axis_range(double lo, double hi, double fixed_lo, double fixed_hi) {
  if (!std::isnan(fixed_lo)) lo = fixed_lo, hi = std::max(hi, fixed_lo);
  if (!std::isnan(fixed_hi)) hi = fixed_hi, lo = std::min(lo, fixed_hi);
  const double pad = hi > lo ? 0.05 * (hi - lo) : hi != 0 ? 0.1 * std::fabs(hi) : 0.5;
  return {std::isnan(fixed_lo) ? lo - pad : lo, std::isnan(fixed_hi) ? hi + pad : hi};
}

// The left margin holds the rotated y label and the widest y tick label; `slots` categories
// or boxes widen the image beyond kWidth when they would not fit.
PlotArea frame(std::pair<double, double> x, std::pair<double, double> y, std::size_t slots) {
  std::size_t chars = 0;
  for (const auto& l : numeric_ticks(y.first, y.second).labels) chars = std::max(chars, l.size());
  PlotArea a;
  a.left = 40 + kDigitWidth * static_cast<int>(chars);
  a.width = std::max(kWidth, a.left + kRight + kSlot * static_cast<int>(slots));
  a.height = kHeight;
  a.right = a.width - kRight, a.top = kTop, a.bottom = kHeight - kBottom;
  std::tie(a.x_lo, a.x_hi) = x;
  std::tie(a.y_lo, a.y_hi) = y;
  return a;
}

std::string series_name(const std::vector<Series>& series, std::size_t i) {
  std::string s = "series " + std::to_string(i);
  if (!series[i].name.empty()) s += ' ' + quote(series[i].name);
  return s;
}

// Validates as write_chart_png documents, messages starting with `where`.
PlotArea chart_area_at(const std::string& where, const Chart& chart, const std::vector<Series>& series) {
  check(!series.empty(), where + ": a chart needs at least one series");
  const std::size_t k = chart.x_categories.size();
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const std::string what = where + ": " + series_name(series, i);
    check(!s.x.empty(), what + " has no points");
    check(s.y.size() == s.x.size(),
          what + ": x has " + std::to_string(s.x.size()) + " values, y " + std::to_string(s.y.size()));
    check(s.err.empty() || s.err.size() == s.x.size(),
          what + ": err has " + std::to_string(s.err.size()) + " values, not 0 or " + std::to_string(s.x.size()));
    // `if`, not check(): no message is built for each of a ROC curve's thousands of points.
    for (const auto& [v, name] : {std::pair{&s.x, "x"}, std::pair{&s.y, "y"}, std::pair{&s.err, "err"}})
      for (std::size_t j = 0; j < v->size(); ++j)
        if (!std::isfinite((*v)[j])) fail(what + ": " + name + "[" + std::to_string(j) + "] is not finite");
    for (std::size_t j = 0; j < s.x.size(); ++j) {
      const double e = s.err.empty() ? 0 : s.err[j];
      if (e < 0) fail(what + ": err[" + std::to_string(j) + "] = " + num(e) + " is negative");
      if (k > 0 && !(s.x[j] >= -0.5 && s.x[j] <= k - 0.5))
        fail(what + ": x[" + std::to_string(j) + "] = " + num(s.x[j]) + " is outside the " + std::to_string(k) +
             " categories (positions 0 to " + std::to_string(k - 1) + ")");
      x_lo = std::min(x_lo, s.x[j]), x_hi = std::max(x_hi, s.x[j]);
      y_lo = std::min(y_lo, s.y[j] - e), y_hi = std::max(y_hi, s.y[j] + e);
    }
  }
  check(!std::isinf(chart.y_min) && !std::isinf(chart.y_max), where + ": y_min and y_max must be finite or NaN");
  check(std::isnan(chart.y_min) || std::isnan(chart.y_max) || chart.y_min < chart.y_max,
        where + ": y_min " + num(chart.y_min) + " is not below y_max " + num(chart.y_max));
  const auto x = k > 0 ? std::pair{-0.5, k - 0.5} : axis_range(x_lo, x_hi, kNaN, kNaN);
  return frame(x, axis_range(y_lo, y_hi, chart.y_min, chart.y_max), k);
}

PlotArea boxplot_area_at(const std::string& where, const std::vector<BoxGroup>& groups) {
  check(!groups.empty(), where + ": a box plot needs at least one group");
  double lo = INFINITY, hi = -INFINITY;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const std::string what = where + ": group " + std::to_string(i) + " " + quote(groups[i].name);
    check(!groups[i].values.empty(), what + " has no values");
    for (std::size_t j = 0; j < groups[i].values.size(); ++j) {
      const double v = groups[i].values[j];
      if (!std::isfinite(v)) fail(what + ": value " + std::to_string(j) + " is not finite");
      lo = std::min(lo, v), hi = std::max(hi, v);  // whiskers and outliers reach the extremes
    }
  }
  return frame({-0.5, groups.size() - 0.5}, axis_range(lo, hi, kNaN, kNaN), groups.size());
}

}  // namespace

Rgb series_colour(std::size_t i) {
  // matplotlib's default cycle (tab10): readers know it, and neighbours differ in hue and lightness
  static constexpr Rgb palette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
                                    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
  return palette[i % std::size(palette)];
}

std::vector<double> nice_ticks(double lo, double hi) {
  check(std::isfinite(lo) && std::isfinite(hi) && lo < hi,
        "ticks: need finite lo < hi, got " + num(lo) + " and " + num(hi));
  const double step = nice_step(lo, hi);
  std::vector<double> out;
  for (double k = std::ceil(lo / step - 1e-9); k <= std::floor(hi / step + 1e-9); ++k)
    out.push_back(std::fabs(k) < 0.5 ? 0.0 : k * step);  // k * step, not a running sum: no drift; never -0
  return out;
}

PlotArea chart_area(const Chart& chart, const std::vector<Series>& series) { return chart_area_at("chart", chart, series); }
PlotArea boxplot_area(const std::vector<BoxGroup>& groups) { return boxplot_area_at("box plot", groups); }

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

// --- chart drawing ---
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX, kBleed = 6, kLine = 18;  // kLine: text line pitch
constexpr double kSmall = 0.45, kLabel = 0.5, kTitle = 0.6;              // text scales
const cv::Scalar kGrid(232, 232, 232), kMuted(150, 150, 150);

cv::Scalar bgr(Rgb c) { return {static_cast<double>(c.b), static_cast<double>(c.g), static_cast<double>(c.r)}; }
cv::Point pixel(double column, double row) {
  return {static_cast<int>(std::lround(column)), static_cast<int>(std::lround(row))};
}

enum class Align { left, centre, right };

int text_width(const std::string& s, double scale) {
  int baseline = 0;
  return cv::getTextSize(s, kFont, scale, 1, &baseline).width;
}

// Text with its baseline at `y` and its left end, centre or right end at `x`; shrunk to `max_width` if wider.
void text(cv::Mat& img, const std::string& s, double x, int y, double scale, Align align, int max_width = 0) {
  int w = text_width(s, scale);
  if (max_width > 0 && w > max_width) scale *= static_cast<double>(max_width) / w, w = text_width(s, scale);
  const double left = align == Align::left ? x : align == Align::centre ? x - w / 2.0 : x - w;
  cv::putText(img, s, pixel(left, y), kFont, scale, kBlack, 1, cv::LINE_AA);
}

// The words of `s` in lines at most `max_width` wide (a word wider than that alone on its line).
std::vector<std::string> wrap(const std::string& s, double scale, int max_width) {
  std::vector<std::string> lines;
  std::size_t at = 0;
  while (at < s.size()) {
    const std::size_t end = std::min(s.find(' ', at), s.size());
    const std::string word = s.substr(at, end - at);
    if (!word.empty()) {
      if (!lines.empty() && text_width(lines.back() + " " + word, scale) <= max_width)
        lines.back() += " " + word;
      else
        lines.push_back(word);
    }
    at = end + 1;
  }
  return lines;
}

// What surrounds the plot area: title, axis labels, and the x ticks (numeric with a grid,
// or category names wrapped to their slot).
struct Axes {
  std::string title, x_label, y_label;
  Ticks x;
  bool x_grid = true;
};

Ticks category_ticks(const std::vector<std::string>& names) {
  Ticks t{{}, names};
  for (std::size_t i = 0; i < names.size(); ++i) t.at.push_back(static_cast<double>(i));
  return t;
}

void draw_axes(cv::Mat& img, const PlotArea& a, const Axes& axes) {
  const Ticks y = numeric_ticks(a.y_lo, a.y_hi);
  for (std::size_t i = 0; i < y.at.size(); ++i) {
    const int r = pixel(0, a.row(y.at[i])).y;
    cv::line(img, {a.left, r}, {a.right, r}, kGrid, 1);
    cv::line(img, {a.left - 4, r}, {a.left, r}, kBlack, 1);
    text(img, y.labels[i], a.left - 7, r + 5, kSmall, Align::right);
  }
  const std::vector<double>& x = axes.x.at;
  const int slot = x.size() > 1 ? static_cast<int>(std::fabs(a.column(x[1]) - a.column(x[0]))) - 8 : a.right - a.left;
  int below = a.bottom + 20 - kLine;  // baseline of the lowest tick label line
  for (std::size_t i = 0; i < x.size(); ++i) {
    const int c = pixel(a.column(x[i]), 0).x;
    if (axes.x_grid) cv::line(img, {c, a.top}, {c, a.bottom}, kGrid, 1);
    cv::line(img, {c, a.bottom}, {c, a.bottom + 4}, kBlack, 1);
    const auto lines = wrap(axes.x.labels[i], kSmall, slot);
    for (std::size_t l = 0; l < lines.size(); ++l) {
      text(img, lines[l], c, a.bottom + 20 + kLine * static_cast<int>(l), kSmall, Align::centre, slot);
      below = std::max(below, a.bottom + 20 + kLine * static_cast<int>(l));
    }
  }
  cv::rectangle(img, {a.left, a.top}, {a.right, a.bottom}, kBlack, 1);
  const double middle = (a.left + a.right) / 2.0;
  text(img, axes.title, middle, a.top - 16, kTitle, Align::centre, a.width - 16);
  text(img, axes.x_label, middle, std::min(below + 26, a.height - 8), kLabel, Align::centre, a.right - a.left);
  // The y label is written across a strip that is then turned upright.
  cv::Mat strip(24, a.bottom - a.top, CV_8UC3, kWhite);
  text(strip, axes.y_label, strip.cols / 2.0, 17, kLabel, Align::centre, strip.cols);
  cv::rotate(strip, strip, cv::ROTATE_90_COUNTERCLOCKWISE);
  strip.copyTo(img(cv::Rect(6, a.top, strip.cols, strip.rows)));
}

// Data drawn in here is clipped to the plot area widened by kBleed, so a fixed y range cuts
// off what lies beyond it but markers on the frame stay whole.
struct PlotCanvas {
  cv::Mat roi;
  const PlotArea& a;
  PlotCanvas(cv::Mat& img, const PlotArea& area)
      : roi(img(cv::Rect(area.left - kBleed, area.top - kBleed, area.right - area.left + 2 * kBleed,
                         area.bottom - area.top + 2 * kBleed))),
        a(area) {}
  cv::Point at(double x, double y) const { return pixel(a.column(x) - (a.left - kBleed), a.row(y) - (a.top - kBleed)); }
};

void dashed_line(cv::Mat& img, cv::Point2d from, cv::Point2d to, const cv::Scalar& colour) {
  const double length = std::hypot(to.x - from.x, to.y - from.y), dash = 6, gap = 4;
  for (double s = 0; s < length; s += dash + gap) {
    const double e = std::min(s + dash, length);
    cv::line(img, pixel(from.x + (to.x - from.x) * s / length, from.y + (to.y - from.y) * s / length),
             pixel(from.x + (to.x - from.x) * e / length, from.y + (to.y - from.y) * e / length), colour, 1, cv::LINE_AA);
  }
}

// Points every 4 pixels from q to p (image pixels), for placing the legend.
void sample_segment(std::vector<cv::Point2d>& out, cv::Point2d q, cv::Point2d p) {
  const int n = static_cast<int>(std::hypot(p.x - q.x, p.y - q.y) / 4);
  for (int t = 1; t < n; ++t) out.push_back(q + (p - q) * (static_cast<double>(t) / n));
}

// Where the series draw: points, error-bar ends, and samples along lines.
std::vector<cv::Point2d> data_samples(const PlotArea& a, const std::vector<Series>& series) {
  std::vector<cv::Point2d> out;
  for (const Series& s : series)
    for (std::size_t j = 0; j < s.x.size(); ++j) {
      const cv::Point2d p(a.column(s.x[j]), a.row(s.y[j]));
      out.push_back(p);
      if (!s.err.empty())
        for (double sign : {-1.0, 1.0}) out.emplace_back(p.x, a.row(s.y[j] + sign * s.err[j]));
      if (s.line && j > 0) sample_segment(out, {a.column(s.x[j - 1]), a.row(s.y[j - 1])}, p);
    }
  return out;
}

// The legend's box: the inner corner of the plot area (upper right, upper left, lower right,
// lower left) that covers no data sample, else outside, right of the plot area, so that no
// data is hidden (the caller widens the image to `box.br().x + inset`).
constexpr int kLegendSwatch = 24, kLegendInset = 8;
cv::Rect legend_box(const PlotArea& a, const std::vector<std::string>& names, const std::vector<cv::Point2d>& samples) {
  int text_w = 0;
  for (const std::string& n : names) text_w = std::max(text_w, text_width(n, kSmall));
  const int w = 8 + kLegendSwatch + 8 + text_w + 10, h = 6 + kLine * static_cast<int>(names.size()) + 4;
  const int xs[] = {a.right - kLegendInset - w, a.left + kLegendInset}, ys[] = {a.top + kLegendInset, a.bottom - kLegendInset - h};
  for (int yi : {0, 1})
    for (int xi : {0, 1}) {
      const cv::Rect box(xs[xi], ys[yi], w, h);
      if (std::none_of(samples.begin(), samples.end(), [&](const cv::Point2d& p) { return box.contains(pixel(p.x, p.y)); }))
        return box;
    }
  return {a.right + kLegendInset, a.top, w, h};
}

std::vector<std::string> legend_names(const std::vector<Series>& series) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < series.size(); ++i) names.push_back(series[i].name.empty() ? "series " + std::to_string(i) : series[i].name);
  return names;
}

// The legend: per series a sample line and/or dot and the name.
void draw_legend(cv::Mat& img, const cv::Rect& box, const std::vector<Series>& series, const std::vector<std::string>& names) {
  cv::rectangle(img, box, kWhite, cv::FILLED);
  cv::rectangle(img, box, kMuted, 1);
  for (std::size_t i = 0; i < series.size(); ++i) {
    const int r = box.y + 6 + kLine * static_cast<int>(i) + kLine / 2, x0 = box.x + 8;
    const cv::Scalar c = bgr(series_colour(i));
    if (series[i].line) cv::line(img, {x0, r}, {x0 + kLegendSwatch, r}, c, 2, cv::LINE_AA);
    if (series[i].points) cv::circle(img, {x0 + kLegendSwatch / 2, r}, 4, c, cv::FILLED, cv::LINE_AA);
    text(img, names[i], x0 + kLegendSwatch + 8, r + 5, kSmall, Align::left);
  }
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

void write_chart_png(const std::string& path, const Chart& chart, const std::vector<Series>& series) {
  const PlotArea a = chart_area_at(path, chart, series);
  std::vector<cv::Point2d> samples = data_samples(a, series);
  const double diag_lo = std::max(a.x_lo, a.y_lo), diag_hi = std::min(a.x_hi, a.y_hi);
  const bool diagonal = chart.diagonal && diag_lo < diag_hi;
  if (diagonal) sample_segment(samples, {a.column(diag_lo), a.row(diag_lo)}, {a.column(diag_hi), a.row(diag_hi)});
  const bool legend = series.size() > 1 || !series[0].name.empty();
  const std::vector<std::string> names = legend_names(series);
  const cv::Rect box = legend ? legend_box(a, names, samples) : cv::Rect();
  cv::Mat img(a.height, std::max(a.width, box.br().x + kLegendInset), CV_8UC3, kWhite);
  const bool numeric = chart.x_categories.empty();
  draw_axes(img, a, {chart.title, chart.x_label, chart.y_label,
                     numeric ? numeric_ticks(a.x_lo, a.x_hi) : category_ticks(chart.x_categories), numeric});
  PlotCanvas canvas(img, a);
  if (diagonal) dashed_line(canvas.roi, canvas.at(diag_lo, diag_lo), canvas.at(diag_hi, diag_hi), kMuted);
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const cv::Scalar c = bgr(series_colour(i));
    if (s.line) {
      std::vector<cv::Point> line;
      for (std::size_t j = 0; j < s.x.size(); ++j) line.push_back(canvas.at(s.x[j], s.y[j]));
      cv::polylines(canvas.roi, line, false, c, 2, cv::LINE_AA);
    }
    for (std::size_t j = 0; j < s.err.size(); ++j) {
      const cv::Point lo = canvas.at(s.x[j], s.y[j] - s.err[j]), hi = canvas.at(s.x[j], s.y[j] + s.err[j]);
      cv::line(canvas.roi, lo, hi, c, 1, cv::LINE_AA);
      for (const cv::Point& end : {lo, hi})
        cv::line(canvas.roi, end - cv::Point(5, 0), end + cv::Point(5, 0), c, 1, cv::LINE_AA);
    }
    if (s.points)
      for (std::size_t j = 0; j < s.x.size(); ++j)
        cv::circle(canvas.roi, canvas.at(s.x[j], s.y[j]), 4, c, cv::FILLED, cv::LINE_AA);
  }
  if (legend) draw_legend(img, box, series, names);
  write_png(path, img);
}

void write_boxplot_png(const std::string& path, const std::string& title, const std::string& y_label,
                       const std::vector<BoxGroup>& groups) {
  const PlotArea a = boxplot_area_at(path, groups);
  cv::Mat img(a.height, a.width, CV_8UC3, kWhite);
  std::vector<std::string> names;
  for (const BoxGroup& g : groups) names.push_back(g.name);
  draw_axes(img, a, {title, "", y_label, category_ticks(names), false});
  PlotCanvas canvas(img, a);
  const int half = std::min(28, static_cast<int>(0.3 * (a.column(1) - a.column(0))));
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const stats::BoxStats b = stats::box_stats(groups[i].values);
    const cv::Scalar c = bgr(series_colour(groups[i].colour)), fill = c * 0.3 + kWhite * 0.7;
    const double x = static_cast<double>(i);
    const int cx = canvas.at(x, 0).x;
    const auto row = [&](double v) { return canvas.at(x, v).y; };
    cv::line(canvas.roi, {cx, row(b.whisker_lo)}, {cx, row(b.q1)}, c, 1, cv::LINE_AA);
    cv::line(canvas.roi, {cx, row(b.q3)}, {cx, row(b.whisker_hi)}, c, 1, cv::LINE_AA);
    for (double v : {b.whisker_lo, b.whisker_hi})
      cv::line(canvas.roi, {cx - half / 2, row(v)}, {cx + half / 2, row(v)}, c, 1, cv::LINE_AA);
    cv::rectangle(canvas.roi, {cx - half, row(b.q3)}, {cx + half, row(b.q1)}, fill, cv::FILLED);
    cv::rectangle(canvas.roi, {cx - half, row(b.q3)}, {cx + half, row(b.q1)}, c, 1);
    cv::line(canvas.roi, {cx - half, row(b.median)}, {cx + half, row(b.median)}, kBlack, 2);
    for (double v : b.outliers) cv::circle(canvas.roi, {cx, row(v)}, 3, c, 1, cv::LINE_AA);
  }
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
void write_chart_png(const std::string& path, const Chart&, const std::vector<Series>&) { no_opencv(path); }
void write_boxplot_png(const std::string& path, const std::string&, const std::string&, const std::vector<BoxGroup>&) {
  no_opencv(path);
}
#endif

}  // namespace morphokd::pipeline
