#include "morphokd/method/stats.hpp"

#include <algorithm>
#include <boost/math/distributions/fisher_f.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "morphokd/error.hpp"
#include "morphokd/random.hpp"

namespace morphokd::stats {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// NaN breaks sorting and inf the interpolation (inf - inf), so every entry point rejects both.
void require_finite(std::span<const double> v, const std::string& what) {
  for (std::size_t i = 0; i < v.size(); ++i)
    check(std::isfinite(v[i]), what + ": value " + std::to_string(i) + " is not finite");
}

// Sum in index order, so every result is reproducible bit for bit.
double sum(std::span<const double> v) { return std::accumulate(v.begin(), v.end(), 0.0); }

// The mean, exact when all values are equal (sum / n need not be: 3 x 0.1 sums to
// 0.30000000000000004), so a constant group has a within-group sum of squares of exactly 0.
double mean(std::span<const double> v) {
  if (std::all_of(v.begin(), v.end(), [&](double x) { return x == v.front(); })) return v.front();
  return sum(v) / static_cast<double>(v.size());
}

double squared_deviations(std::span<const double> v, double centre) {
  double ss = 0;
  for (const double x : v) ss += (x - centre) * (x - centre);
  return ss;
}

}  // namespace

MeanSd mean_sd(std::span<const double> v) {
  check(!v.empty(), "mean_sd: no values");
  require_finite(v, "mean_sd");
  MeanSd r;
  r.n = v.size();
  r.mean = mean(v);
  if (r.n > 1) r.sd = std::sqrt(squared_deviations(v, r.mean) / static_cast<double>(r.n - 1));
  return r;
}

double percentile(std::vector<double> v, double q) {
  check(!v.empty(), "percentile: no values");
  check(q >= 0 && q <= 1, "percentile: q must be in [0, 1], got " + std::to_string(q));
  require_finite(v, "percentile");
  // Position q * (n - 1) in the sorted values, interpolated linearly.
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

BoxStats box_stats(std::span<const double> v) {
  check(!v.empty(), "box_stats: no values");
  require_finite(v, "box_stats");
  std::vector<double> sorted(v.begin(), v.end());
  std::sort(sorted.begin(), sorted.end());
  BoxStats b;
  b.q1 = percentile(sorted, 0.25);
  b.median = percentile(sorted, 0.5);
  b.q3 = percentile(sorted, 0.75);
  const double reach = 1.5 * (b.q3 - b.q1), lo_fence = b.q1 - reach, hi_fence = b.q3 + reach;
  // Each search finds a value (lo_fence <= q1 <= maximum, hi_fence >= q3 >= minimum); one inside the
  // box is replaced by its quartile, as matplotlib does, so no whisker points into the box.
  b.whisker_lo = std::min(b.q1, *std::find_if(sorted.begin(), sorted.end(), [&](double x) { return x >= lo_fence; }));
  b.whisker_hi = std::max(b.q3, *std::find_if(sorted.rbegin(), sorted.rend(), [&](double x) { return x <= hi_fence; }));
  for (const double x : sorted)
    if (x < lo_fence || x > hi_fence) b.outliers.push_back(x);
  return b;
}

double f_upper_tail(double f, double d1, double d2) {
  check(std::isfinite(d1) && d1 > 0 && std::isfinite(d2) && d2 > 0,
        "f_upper_tail: degrees of freedom must be positive and finite, got " + std::to_string(d1) + " and " +
            std::to_string(d2));
  check(!std::isnan(f), "f_upper_tail: F is NaN");
  if (f <= 0) return 1.0;
  if (f == kInf) return 0.0;  // Boost.Math rejects an infinite argument
  return boost::math::cdf(boost::math::complement(boost::math::fisher_f_distribution<double>(d1, d2), f));
}

Anova one_way_anova(const std::vector<std::vector<double>>& groups) {
  const std::size_t k = groups.size();
  check(k >= 2, "one_way_anova: needs at least two groups, got " + std::to_string(k));
  std::size_t n = 0;
  double total = 0;
  for (std::size_t g = 0; g < k; ++g) {
    check(!groups[g].empty(), "one_way_anova: group " + std::to_string(g) + " is empty");
    require_finite(groups[g], "one_way_anova: group " + std::to_string(g));
    n += groups[g].size();
    total += sum(groups[g]);
  }
  check(n > k, "one_way_anova: " + std::to_string(n) + " values in " + std::to_string(k) +
                   " groups leave no within-group degrees of freedom");
  const double grand = total / static_cast<double>(n);
  Anova a;
  for (const auto& group : groups) {
    const double m = mean(group);
    a.ss_between += static_cast<double>(group.size()) * (m - grand) * (m - grand);
    a.ss_within += squared_deviations(group, m);
  }
  a.df_between = static_cast<int>(k - 1);
  a.df_within = static_cast<int>(n - k);
  if (a.ss_within == 0) {
    // Constant groups: different means are certain (F = inf, p = 0); equal ones leave F
    // undefined (0 / 0), NaN as scipy.stats.f_oneway.
    a.f = a.ss_between > 0 ? kInf : kNaN;
    a.p = a.ss_between > 0 ? 0.0 : kNaN;
    return a;
  }
  a.f = (a.ss_between / a.df_between) / (a.ss_within / a.df_within);
  a.p = f_upper_tail(a.f, a.df_between, a.df_within);
  return a;
}

std::vector<RocPoint> roc_curve(std::span<const double> scores, std::span<const std::uint8_t> labels) {
  check(scores.size() == labels.size(), "roc_curve: " + std::to_string(scores.size()) + " scores but " +
                                            std::to_string(labels.size()) + " labels");
  require_finite(scores, "roc_curve: score");
  std::int64_t pos = 0, neg = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    check(labels[i] <= 1, "roc_curve: label " + std::to_string(labels[i]) + " at cell " + std::to_string(i) +
                              " is neither 0 (normal) nor 1 (abnormal)");
    (labels[i] ? pos : neg)++;
  }
  check(pos > 0 && neg > 0, "roc_curve needs both normal and abnormal cells; got " + std::to_string(neg) +
                                " normal, " + std::to_string(pos) + " abnormal");
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  // Lowering the threshold past a group of tied scores calls that whole group abnormal.
  std::vector<RocPoint> curve{{0.0, 0.0, kInf}};
  std::int64_t tp = 0, fp = 0;
  for (std::size_t i = 0; i < order.size();) {
    const double t = scores[order[i]];
    for (; i < order.size() && scores[order[i]] == t; ++i) (labels[order[i]] ? tp : fp)++;
    curve.push_back({static_cast<double>(fp) / static_cast<double>(neg),
                     static_cast<double>(tp) / static_cast<double>(pos), t});
  }
  return curve;
}

std::pair<double, double> bootstrap_ci(std::size_t n, const WeightedStatistic& statistic, int resamples,
                                       std::uint64_t seed, double level) {
  check(n >= 1, "bootstrap: needs at least one cell");
  check(static_cast<bool>(statistic), "bootstrap: no statistic");
  check(resamples >= 1, "bootstrap: resamples must be >= 1, got " + std::to_string(resamples));
  check(level > 0 && level < 1, "bootstrap: level must be in (0, 1), got " + std::to_string(level));
  const std::uint64_t cells = n, max_draws = 100 * static_cast<std::uint64_t>(resamples);
  std::vector<double> values, multiplicity(n);
  values.reserve(static_cast<std::size_t>(resamples));
  for (std::uint64_t draw = 0; values.size() < static_cast<std::size_t>(resamples); ++draw) {
    check(draw < max_draws, "bootstrap: " + std::to_string(max_draws) + " draws gave only " +
                                std::to_string(values.size()) + " resamples on which the statistic is defined");
    std::fill(multiplicity.begin(), multiplicity.end(), 0.0);
    for (std::uint64_t j = 0; j < cells; ++j)
      multiplicity[static_cast<std::size_t>(uniform01(seed, draw * cells + j) * static_cast<double>(cells))] += 1;
    if (const double v = statistic(multiplicity); !std::isnan(v)) values.push_back(v);
  }
  // 1 - tail rather than (1 + level) / 2: they can differ in the last bit.
  const double tail = (1 - level) / 2;
  return {percentile(values, tail), percentile(std::move(values), 1 - tail)};
}

}  // namespace morphokd::stats
