// PNG figures of the paper's kind, drawn with OpenCV (a build without it: an Error saying
// so; figures_available() tells first). Cells and maps are [H, W] float planes in [0, 1];
// each is drawn enlarged `kScale` times. Files are encoded in memory and written atomically.
#pragma once
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

// A line plot of y against x with points marked, axes labelled and ticked.
void write_curve_png(const std::string& path, const std::vector<double>& x, const std::vector<double>& y,
                     const std::string& x_label, const std::string& y_label, const std::string& title);

}  // namespace morphokd::pipeline
