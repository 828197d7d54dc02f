// FGSM attacks and localization maps on a trained run (method/fgsm.hpp, method/localize.hpp).
// Both differentiate the run's own anomaly score (its pools, score rule and test-time flips)
// with respect to the raw gray cell in [0, 1], through the run's input transform.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "morphokd/method/fgsm.hpp"
#include "morphokd/pipeline/detector.hpp"

namespace morphokd::pipeline {

// x_adv of raw cells [N, 1, H, W] against the detector's score; `directions[i]` per cell
// (one entry: every cell). Optional: `grad` receives the score gradient at x, `scores` the
// scores of x (the same pass computes them).
Tensor fgsm_cells(Detector& det, const Tensor& cells, float eps, const std::vector<method::FgsmDirection>& directions,
                  Tensor* grad = nullptr, std::vector<double>* scores = nullptr);

// Test AUC when every cell is attacked against its label (normal raised, abnormal lowered),
// for each eps: {eps, auc}. The gradient is taken once, at the clean cells.
std::vector<std::pair<double, double>> robustness_curve(Detector& det, const Tensor& cells,
                                                        const std::vector<std::uint8_t>& labels,
                                                        const std::vector<double>& eps);
// "0,0.002,0.01" -> values, each checked by method::check_eps; Error naming --robustness.
std::vector<double> parse_eps_list(const std::string& text);

struct AttackOptions {
  std::string run_dir, input, out;  // input: .npy cells or an image folder; out: .npy
  double eps = 0.01;
  std::string direction = "raise";
  std::string figure;     // optional PNG: the FGSM steps of cell `figure_index`
  long figure_index = 0;
};
struct AttackResult {
  std::vector<double> before, after;  // the run's scores of the clean and the attacked cells
};
// Writes `out`: float32 N x H x W in [0, 1].
AttackResult attack_cells(const AttackOptions& o);

struct LocalizeOptions {
  std::string run_dir, input, out;  // input: .npy or an image folder; or empty with `split`
  std::string split;                // MHSMA split of the run's data and part instead of input
  int label = -1;                   // with split: only cells with this label (-1: all)
  long limit = 0;                   // first N cells (0: all)
  std::string method = "grad";      // grad | smoothgrad | gbp
  int n = 50;                       // SmoothGrad copies
  double sigma_noise = 0.05;        // SmoothGrad noise, fraction of the cell's max - min
  std::uint64_t seed = 0;           // SmoothGrad noise stream
  double blur_sigma = 2.0;          // pixels at 64x64 (MKD: 4 at 128)
  std::string channels = "gray";    // gray: |sum_c g_c|; mkd: sum_c |g_c|
};
// Writes OUT/{index}.npy (raw map, H x W float32), OUT/{index}.png (overlay), OUT/grid.png
// and OUT/localize.json (options, input SHA-256, per-cell scores), all or nothing.
// Returns the number of cells.
long localize_cells(const LocalizeOptions& o);

}  // namespace morphokd::pipeline
