// Independent reference computations the tests compare against (no Boost, so the CLI test
// tools use them too).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "morphokd/tensor.hpp"

namespace morphokd::test {

// max |actual - expected| / max |expected| (the absolute error where expected is all zero):
// the error measure every numeric comparison in the tests states. Shapes must match.
inline double rel_error(const Tensor& actual, const Tensor& expected) {
  double err = 0, scale = 0;
  for (Index i = 0; i < expected.numel(); ++i) {
    err = std::max(err, std::fabs(double(actual.data()[i]) - expected.data()[i]));
    scale = std::max(scale, std::fabs(double(expected.data()[i])));
  }
  return scale > 0 ? err / scale : err;
}

// ROC AUC by O(n^2) pair counting: the fraction of (abnormal, normal) pairs ranked right,
// ties counting one half, cell i counted m[i] times (NaN when a class has no weight).
// Labels: 1 abnormal, 0 normal.
template <class Scores, class Labels, class Weights>
double weighted_auc_pairs(const Scores& s, const Labels& y, const Weights& m) {
  double wins = 0, abnormal = 0, normal = 0;
  for (std::size_t i = 0; i < s.size(); ++i) (y[i] ? abnormal : normal) += m[i];
  if (abnormal == 0 || normal == 0) return std::nan("");
  for (std::size_t i = 0; i < s.size(); ++i)
    for (std::size_t j = 0; j < s.size(); ++j)
      if (y[i] == 1 && y[j] == 0) wins += m[i] * m[j] * (s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0);
  return wins / (abnormal * normal);
}

template <class Scores, class Labels>
double auc_pairs(const Scores& s, const Labels& y) {
  return weighted_auc_pairs(s, y, std::vector<double>(s.size(), 1.0));
}

// numpy.percentile(v, 100 * q) ("linear"), written out independently.
inline double np_percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  if (lo + 1 >= v.size()) return v.back();
  return v[lo] + (pos - static_cast<double>(lo)) * (v[lo + 1] - v[lo]);
}

}  // namespace morphokd::test
