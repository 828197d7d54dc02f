// Statistics for the paper's analyses (issue 9): summaries over seeds, box-plot quantities,
// one-way ANOVA with its F-distribution tail (Boost.Math), ROC curves and a generic
// percentile bootstrap on the counter-based stream metrics.hpp's AUC CI uses.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

namespace morphokd::stats {

// Mean and sample standard deviation (n - 1; 0 for one value). Error when empty or not finite.
struct MeanSd {
  double mean = 0, sd = 0;
  std::size_t n = 0;
};
MeanSd mean_sd(std::span<const double> v);

// numpy.percentile's default ("linear") at q in [0, 1]. Error when empty, q is outside [0, 1]
// or a value is not finite.
double percentile(std::vector<double> v, double q);

// Tukey box plot as matplotlib's boxplot_stats(whis=1.5): quartiles by percentile() above,
// whiskers at the most extreme values within 1.5 IQR of the box (never inside the box: a
// whisker with no value between its quartile and its fence sits at the quartile), every value
// beyond the fences an outlier (ascending). Error when empty or a value is not finite.
struct BoxStats {
  double q1 = 0, median = 0, q3 = 0, whisker_lo = 0, whisker_hi = 0;
  std::vector<double> outliers;
};
BoxStats box_stats(std::span<const double> v);

// P(F > f) for F ~ F(d1, d2) (Boost.Math's complement cdf); 1 for f <= 0, 0 for f = inf.
// Error for NaN f or degrees of freedom that are not positive and finite.
double f_upper_tail(double f, double d1, double d2);

// One-way ANOVA of k >= 2 groups, each with >= 1 value and N > k values in all:
// F = (SS_between / (k - 1)) / (SS_within / (N - k)), p = f_upper_tail(F, k - 1, N - k).
// Error naming the problem otherwise (fewer than two groups, an empty group, no
// within-group freedom, a value not finite). Zero within-group variance gives F = inf, p = 0,
// or F = p = NaN when all values are equal (scipy.stats.f_oneway's answers).
struct Anova {
  double ss_between = 0, ss_within = 0, f = 0, p = 1;
  int df_between = 0, df_within = 0;
};
Anova one_way_anova(const std::vector<std::vector<double>>& groups);

// ROC curve with abnormal (label 1) positive, as scikit-learn's roc_curve(drop_intermediate=False):
// the first point (0, 0) at threshold +inf, then one point per distinct score, descending;
// a cell is called abnormal when score >= threshold. Error if either class is absent.
struct RocPoint {
  double fpr = 0, tpr = 0, threshold = 0;
};
std::vector<RocPoint> roc_curve(std::span<const double> scores, std::span<const std::uint8_t> labels);

// Percentile bootstrap CI of a statistic of n cells. Draw d takes n cells with replacement,
// cell j of the draw = floor(uniform01(seed, d * n + j) * n); `statistic` gets each cell's
// multiplicity in the draw (integers held as double) and returns NaN for a draw on which it is
// undefined, which is then redrawn (at most 100 * resamples draws, else Error).
// With tail = (1 - level) / 2 the interval is (percentile(values, tail), percentile(values, 1 - tail)).
// Error for n = 0, no statistic, resamples < 1 or level outside (0, 1).
using WeightedStatistic = std::function<double(std::span<const double> multiplicity)>;
std::pair<double, double> bootstrap_ci(std::size_t n, const WeightedStatistic& statistic, int resamples = 1000,
                                       std::uint64_t seed = 0, double level = 0.95);

}  // namespace morphokd::stats
