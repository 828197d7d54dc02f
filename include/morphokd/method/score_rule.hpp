// How the per-layer distance terms of a cell become its anomaly score. None of these look
// at abnormal labels: statistics come from the normal cells of the validation split.
//   sum      sum_c term_c: the paper's score (distill.hpp)
//   layer-z  sum_c (term_c - mean_c) / std_c with each layer's mean and std over normal
//            validation cells, so no single layer's scale dominates the sum
// Test-time flips (tta "flip") average each term over the 4 flips of the cell before that.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace morphokd::method {

struct ScoreRule {
  std::string combine = "sum";  // sum | layer-z
  bool tta_flip = false;
  std::vector<double> layer_mean, layer_std;  // layer-z: fitted by calibrate()

  // Error naming --score / --tta for unknown names.
  static ScoreRule parse(const std::string& combine, const std::string& tta);
  std::string tta() const { return tta_flip ? "flip" : "none"; }

  // Fits layer_mean / layer_std on the rows of `terms` (N x L) whose label is 0 (a no-op for sum).
  void calibrate(const std::vector<double>& terms, std::size_t layers, const std::vector<std::uint8_t>& labels);
  // Scores of N cells from their N x L terms; layer-z needs calibrate() first.
  std::vector<double> combine_terms(const std::vector<double>& terms, std::size_t layers) const;
  // d score / d term_c for each of `layers` layers: 1 (sum) or 1 / std_c (layer-z).
  std::vector<double> layer_weights(std::size_t layers) const;
};

// (s - mean) / std with the mean and std of the scores labelled 0: puts ensemble members on
// one scale. Error when fewer than two normal cells or they all score the same.
std::vector<double> standardise_by_normal(const std::vector<double>& scores, const std::vector<double>& normal_reference);

}  // namespace morphokd::method
