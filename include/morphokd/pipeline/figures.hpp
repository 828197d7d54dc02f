// PNG figures of the paper's kind, drawn with OpenCV (a build without it: an Error saying
// so; figures_available() tells first). Cells and maps are [H, W] float planes in [0, 1];
// each is drawn enlarged `kScale` times. Files are encoded in memory and written atomically.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "morphokd/tensor.hpp"

namespace morphokd::pipeline {

bool figures_available();

// The cell in gray with `map` as a JET colour map blended over it (Fig. 14, one cell).
void write_overlay_png(const std::string& path, const float* cell, const float* map, Index h, Index w);

// A grid of (cell, overlay) pairs, `columns` pairs a row, each captioned: cells and maps [N, H, W].
void write_map_grid_png(const std::string& path, const Tensor& cells, const Tensor& maps,
                        const std::vector<std::string>& captions, int columns);

// FGSM steps for one cell (Fig. 11-12): image, sign of the gradient (gray 0.5 = 0), attacked image.
void write_fgsm_png(const std::string& path, const float* x, const float* grad, const float* x_adv, Index h, Index w,
                    const std::string& caption_before, const std::string& caption_after);

// --- charts ---------------------------------------------------------------------------------

// One series of a chart: points (x[i], y[i]), optionally with a ±err[i] error bar each.
// Every member of these structs has an initializer, so designated initializers may leave
// any out without -Wextra's missing-initializer warning.
struct Series {
  std::string name{};                   // legend entry
  std::vector<double> x{}, y{}, err{};  // err empty or one value >= 0 a point
  bool line = true, points = true;      // joined by lines, marked by dots
};

struct Chart {
  std::string title{}, x_label{}, y_label{};
  // Non-empty: a categorical x axis; x values are positions 0..k-1 labelled with these
  // (fractional positions within ±0.5 of a category set series side by side).
  std::vector<std::string> x_categories{};
  // Fixed y range; NaN: from the data (error bars included) with a 5% margin.
  double y_min = std::numeric_limits<double>::quiet_NaN(), y_max = std::numeric_limits<double>::quiet_NaN();
  bool diagonal = false;  // the y = x reference line, for ROC curves
};

// Series in palette order (series_colour), a legend when there are several series or a named
// one (in the plot-area corner covering the least data), "nice" ticks on numeric axes.
// Error naming `path`, nothing written: no series, an empty series, x/y/err lengths that
// differ, a value that is not finite, a negative err, x outside the categories, y_min >= y_max.
void write_chart_png(const std::string& path, const Chart& chart, const std::vector<Series>& series);

// A Tukey box plot of each group side by side (stats::box_stats): box q1..q3, median line,
// whiskers, outliers as circles, group names below. Error naming `path`, nothing written:
// no groups, an empty group, a value that is not finite.
struct BoxGroup {
  std::string name{};
  std::vector<double> values{};
  std::size_t colour = 0;  // index into series_colour, e.g. 0 normal and 1 abnormal cells
};
void write_boxplot_png(const std::string& path, const std::string& title, const std::string& y_label,
                       const std::vector<BoxGroup>& groups);

// The colour of series i (a fixed 10-colour palette, repeating).
struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};
Rgb series_colour(std::size_t i);

// Ticks at multiples of 1, 2 or 5 times a power of ten, about five of them within [lo, hi].
std::vector<double> nice_ticks(double lo, double hi);

// Where the two functions above draw: the image size, the plot area's frame (pixel columns
// left/right, rows top/bottom) and the data values at its edges. Categorical x (and box-plot
// groups) spans -0.5..k-0.5. Error for input the functions would refuse.
struct PlotArea {
  int width = 0, height = 0, left = 0, top = 0, right = 0, bottom = 0;
  double x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  double column(double x) const { return left + (x - x_lo) / (x_hi - x_lo) * (right - left); }
  double row(double y) const { return bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top); }
};
PlotArea chart_area(const Chart& chart, const std::vector<Series>& series);
PlotArea boxplot_area(const std::vector<BoxGroup>& groups);

}  // namespace morphokd::pipeline
