// Statistics against published values (scipy's documentation, F tables), closed forms of the
// F distribution, hand-worked cases and oracles written here independently of lib/method/.
#define BOOST_TEST_MODULE stats
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "morphokd/error.hpp"
#include "morphokd/method/metrics.hpp"
#include "morphokd/method/stats.hpp"
#include "morphokd/random.hpp"
#include "support.hpp"

namespace st = morphokd::stats;
using Labels = std::vector<std::uint8_t>;
using Values = std::vector<double>;
using morphokd::test::np_percentile;  // independent oracles, support/oracles.hpp
using morphokd::test::throws_with;
using morphokd::test::weighted_auc_pairs;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double rel(double actual, double expected) { return std::abs(actual - expected) / std::abs(expected); }

}  // namespace

BOOST_AUTO_TEST_SUITE(summaries)

BOOST_AUTO_TEST_CASE(mean_sd_hand) {
  // Deviations from the mean 5: -3 -1 -1 -1 0 0 2 4, squares sum to 32; sample sd sqrt(32 / 7).
  const st::MeanSd r = st::mean_sd(Values{2, 4, 4, 4, 5, 5, 7, 9});
  BOOST_TEST(r.n == 8u);
  BOOST_TEST(r.mean == 5.0);
  BOOST_TEST(rel(r.sd, std::sqrt(32.0 / 7.0)) < 1e-15);
  const st::MeanSd one = st::mean_sd(Values{-2.5});
  BOOST_TEST(one.mean == -2.5);
  BOOST_TEST(one.sd == 0.0);
  BOOST_TEST(one.n == 1u);
  // A constant series has sd exactly 0 (3 x 0.1 does not sum to exactly 0.3).
  BOOST_TEST(st::mean_sd(Values{0.1, 0.1, 0.1}).sd == 0.0);
  BOOST_TEST(throws_with([] { st::mean_sd(Values{}); }, "mean_sd: no values"));
  BOOST_TEST(throws_with([] { st::mean_sd(Values{1, kNaN}); }, "mean_sd: value 1 is not finite"));
  BOOST_TEST(throws_with([] { st::mean_sd(Values{kInf}); }, "value 0 is not finite"));
}

BOOST_AUTO_TEST_CASE(percentile_as_numpy) {
  // numpy: percentile([1, 2, 3, 4], 25) = 1.75; the docs' [[10, 7, 4], [3, 2, 1]] at 50 = 3.5.
  BOOST_TEST(std::abs(st::percentile({1, 2, 3, 4}, 0.25) - 1.75) < 1e-12);
  BOOST_TEST(std::abs(st::percentile({10, 7, 4, 3, 2, 1}, 0.5) - 3.5) < 1e-12);
  // Position 0.4 * 4 = 1.6 in 15 20 35 40 50: 20 + 0.6 * 15 = 29.
  BOOST_TEST(std::abs(st::percentile({50, 15, 40, 20, 35}, 0.4) - 29.0) < 1e-12);
  BOOST_TEST(st::percentile({3, -1, 2}, 0.0) == -1.0);
  BOOST_TEST(st::percentile({3, -1, 2}, 1.0) == 3.0);
  BOOST_TEST(st::percentile({4.25}, 0.3) == 4.25);
  BOOST_TEST(throws_with([] { st::percentile({}, 0.5); }, "percentile: no values"));
  BOOST_TEST(throws_with([] { st::percentile({1, 2}, -0.1); }, "q must be in [0, 1]"));
  BOOST_TEST(throws_with([] { st::percentile({1, 2}, 1.5); }, "q must be in [0, 1]"));
  BOOST_TEST(throws_with([] { st::percentile({1, 2}, kNaN); }, "q must be in [0, 1]"));
  BOOST_TEST(throws_with([] { st::percentile({1, kInf}, 0.5); }, "percentile: value 1 is not finite"));
}

BOOST_AUTO_TEST_CASE(box_plot_hand) {
  // Sorted -10 0 1 2 3 4 5 11 12 (n = 9, quartiles at positions 2, 4, 6): Q1 1, median 3, Q3 5,
  // IQR 4, fences -5 and 11. 11 sits on the fence, so it is the upper whisker, not an outlier.
  const st::BoxStats a = st::box_stats(Values{12, -10, 3, 0, 5, 1, 11, 4, 2});
  BOOST_TEST(a.q1 == 1.0);
  BOOST_TEST(a.median == 3.0);
  BOOST_TEST(a.q3 == 5.0);
  BOOST_TEST(a.whisker_lo == 0.0);
  BOOST_TEST(a.whisker_hi == 11.0);
  BOOST_TEST(a.outliers == (Values{-10, 12}), boost::test_tools::per_element());
  // No outliers: whiskers at the extremes.
  const st::BoxStats b = st::box_stats(Values{5, 1, 4, 2, 3});
  BOOST_TEST(b.q1 == 2.0);
  BOOST_TEST(b.median == 3.0);
  BOOST_TEST(b.q3 == 4.0);
  BOOST_TEST(b.whisker_lo == 1.0);
  BOOST_TEST(b.whisker_hi == 5.0);
  BOOST_TEST(b.outliers.empty());
  // matplotlib's boxplot_stats on 0 0 1 100: Q1 0 (position 0.75), median 0.5, Q3 1 + 0.25 * 99
  // = 25.75, upper fence 64.375. The largest value within it (1) is inside the box, so the
  // whisker sits at Q3; 100 is an outlier.
  const st::BoxStats c = st::box_stats(Values{0, 100, 0, 1});
  BOOST_TEST(c.q1 == 0.0);
  BOOST_TEST(c.median == 0.5);
  BOOST_TEST(c.q3 == 25.75);
  BOOST_TEST(c.whisker_lo == 0.0);
  BOOST_TEST(c.whisker_hi == 25.75);
  BOOST_TEST(c.outliers == (Values{100}), boost::test_tools::per_element());
  // Constant values: everything collapses onto the value, no outliers.
  const st::BoxStats d = st::box_stats(Values{7, 7, 7});
  BOOST_TEST(d.whisker_lo == 7.0);
  BOOST_TEST(d.whisker_hi == 7.0);
  BOOST_TEST(d.outliers.empty());
  BOOST_TEST(throws_with([] { st::box_stats(Values{}); }, "box_stats: no values"));
  BOOST_TEST(throws_with([] { st::box_stats(Values{1, -kInf}); }, "box_stats: value 1 is not finite"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(f_distribution)

BOOST_AUTO_TEST_CASE(closed_forms) {
  // F(2, d2): P(F > f) = (1 + 2f / d2)^(-d2 / 2).
  // F(1, 1) is the square of a Cauchy variable: P(F > f) = (2 / pi) atan(1 / sqrt f).
  // F(d1, 2): P(F <= f) = (d1 f / (d1 f + 2))^(d1 / 2), its complement via expm1/log1p.
  for (const double f : {1e-3, 0.01, 0.5, 1.0, 3.7, 20.0, 250.0}) {
    for (const double d2 : {1.0, 2.0, 3.0, 7.5, 30.0, 200.0})
      BOOST_TEST(rel(st::f_upper_tail(f, 2, d2), std::pow(1 + 2 * f / d2, -d2 / 2)) < 1e-12,
                 "F(2, " << d2 << ") at " << f);
    BOOST_TEST(rel(st::f_upper_tail(f, 1, 1), 2 / std::numbers::pi * std::atan(1 / std::sqrt(f))) < 1e-12,
               "F(1, 1) at " << f);
    for (const double d1 : {1.0, 3.0, 5.5, 40.0})
      BOOST_TEST(rel(st::f_upper_tail(f, d1, 2), -std::expm1(d1 / 2 * std::log1p(-2 / (d1 * f + 2)))) < 1e-12,
                 "F(" << d1 << ", 2) at " << f);
  }
  BOOST_TEST(st::f_upper_tail(0, 3, 4) == 1.0);
  BOOST_TEST(st::f_upper_tail(-2, 3, 4) == 1.0);
  BOOST_TEST(st::f_upper_tail(kInf, 3, 4) == 0.0);
}

BOOST_AUTO_TEST_CASE(table_critical_values) {
  // Upper critical values F_alpha(d1, d2) of the standard tables, printed to 3 significant
  // digits: the true value lies within half a unit of the last digit, so the tail at the
  // bracket's ends must straddle alpha, and the tail at the printed value is alpha to 3 %.
  struct Row {
    double alpha, d1, d2, printed, half_unit;
  };
  for (const Row r : {Row{0.05, 2, 10, 4.10, 0.005}, Row{0.01, 3, 20, 4.94, 0.005}, Row{0.05, 1, 10, 4.96, 0.005},
                      Row{0.05, 3, 20, 3.10, 0.005}, Row{0.05, 10, 10, 2.98, 0.005}, Row{0.01, 1, 120, 6.85, 0.005},
                      Row{0.05, 4, 60, 2.53, 0.005}, Row{0.01, 5, 30, 3.70, 0.005}, Row{0.05, 1, 1, 161.4, 0.05}}) {
    const std::string what =
        "F_" + std::to_string(r.alpha) + "(" + std::to_string(r.d1) + ", " + std::to_string(r.d2) + ")";
    BOOST_TEST(st::f_upper_tail(r.printed - r.half_unit, r.d1, r.d2) > r.alpha, what);
    BOOST_TEST(st::f_upper_tail(r.printed + r.half_unit, r.d1, r.d2) < r.alpha, what);
    BOOST_TEST(rel(st::f_upper_tail(r.printed, r.d1, r.d2), r.alpha) < 0.03, what);
  }
}

BOOST_AUTO_TEST_CASE(bad_arguments) {
  BOOST_TEST(throws_with([] { st::f_upper_tail(1, 0, 4); }, "f_upper_tail: degrees of freedom"));
  BOOST_TEST(throws_with([] { st::f_upper_tail(1, 3, -1); }, "f_upper_tail: degrees of freedom"));
  BOOST_TEST(throws_with([] { st::f_upper_tail(1, kInf, 4); }, "f_upper_tail: degrees of freedom"));
  BOOST_TEST(throws_with([] { st::f_upper_tail(1, 3, kNaN); }, "f_upper_tail: degrees of freedom"));
  BOOST_TEST(throws_with([] { st::f_upper_tail(kNaN, 3, 4); }, "f_upper_tail: F is NaN"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(anova)

BOOST_AUTO_TEST_CASE(scipy_mussel_example) {
  // scipy.stats.f_oneway's documentation: shell measurements of Mytilus trossulus at five
  // locations (McDonald et al. 1991) give F = 7.1210194716424473, p = 0.00028122423145345439.
  const st::Anova a = st::one_way_anova({
      {0.0571, 0.0813, 0.0831, 0.0976, 0.0817, 0.0859, 0.0735, 0.0659, 0.0923, 0.0836},  // Tillamook
      {0.0873, 0.0662, 0.0672, 0.0819, 0.0749, 0.0649, 0.0835, 0.0725},                  // Newport
      {0.0974, 0.1352, 0.0817, 0.1016, 0.0968, 0.1064, 0.105},                           // Petersburg
      {0.1033, 0.0915, 0.0781, 0.0685, 0.0677, 0.0697, 0.0764, 0.0689},                  // Magadan
      {0.0703, 0.1026, 0.0956, 0.0973, 0.1039, 0.1045},                                  // Tvarminne
  });
  BOOST_TEST(a.df_between == 4);
  BOOST_TEST(a.df_within == 34);
  BOOST_TEST(rel(a.f, 7.121019471642447) < 1e-12);
  BOOST_TEST(rel(a.p, 0.0002812242314534544) < 1e-9);
}

BOOST_AUTO_TEST_CASE(textbook_by_hand) {
  // Wikipedia, "One-way analysis of variance": group means 5, 9, 10, grand mean 8.
  // SS_between = 6 (3^2 + 1^2 + 2^2) = 84, df 2; SS_within = 16 + 24 + 28 = 68, df 15;
  // F = 42 / (68 / 15) = 9.2647, above F_0.05(2, 15) = 3.68. p by the F(2, d2) closed form.
  const st::Anova a = st::one_way_anova({{6, 8, 4, 5, 3, 4}, {8, 12, 9, 11, 6, 8}, {13, 9, 11, 8, 7, 12}});
  BOOST_TEST(rel(a.ss_between, 84.0) < 1e-12);
  BOOST_TEST(rel(a.ss_within, 68.0) < 1e-12);
  BOOST_TEST(a.df_between == 2);
  BOOST_TEST(a.df_within == 15);
  const double f = 42.0 / (68.0 / 15.0);
  BOOST_TEST(rel(a.f, f) < 1e-12);
  BOOST_TEST(rel(a.p, std::pow(1 + 2 * f / 15, -7.5)) < 1e-12);
  BOOST_TEST(a.p < 0.05);
  // Unequal sizes: {1, 3} mean 2, {4, 6, 8} mean 6, {2, 3, 4, 5, 6} mean 4, grand mean 4.2.
  // SS_between = 2 (2.2^2) + 3 (1.8^2) + 5 (0.2^2) = 19.6, df 2; SS_within = 2 + 8 + 10 = 20,
  // df 7; F = 9.8 / (20 / 7) = 3.43; p = (1 + 2 * 3.43 / 7)^(-3.5) = 1.98^(-3.5).
  const st::Anova b = st::one_way_anova({{1, 3}, {4, 6, 8}, {2, 3, 4, 5, 6}});
  BOOST_TEST(rel(b.ss_between, 19.6) < 1e-12);
  BOOST_TEST(rel(b.ss_within, 20.0) < 1e-12);
  BOOST_TEST(b.df_between == 2);
  BOOST_TEST(b.df_within == 7);
  BOOST_TEST(rel(b.f, 3.43) < 1e-12);
  BOOST_TEST(rel(b.p, std::pow(1.98, -3.5)) < 1e-12);
}

BOOST_AUTO_TEST_CASE(degenerate_variance) {
  // Constant groups with different means: F = inf, p = 0 (as scipy), also for 0.1 and 0.2.
  for (const auto& groups :
       {std::vector<Values>{{1, 1}, {2, 2, 2}}, std::vector<Values>{{0.1, 0.1, 0.1}, {0.2, 0.2}}}) {
    const st::Anova a = st::one_way_anova(groups);
    BOOST_TEST(a.ss_within == 0.0);
    BOOST_TEST(a.ss_between > 0.0);
    BOOST_TEST(a.f == kInf);
    BOOST_TEST(a.p == 0.0);
  }
  // All values equal: F = 0 / 0, NaN as scipy.
  const st::Anova same = st::one_way_anova({{3, 3}, {3}});
  BOOST_TEST(std::isnan(same.f));
  BOOST_TEST(std::isnan(same.p));
}

BOOST_AUTO_TEST_CASE(bad_groups) {
  BOOST_TEST(throws_with([] { st::one_way_anova({}); }, "one_way_anova: needs at least two groups, got 0"));
  BOOST_TEST(throws_with([] { st::one_way_anova({{1, 2, 3}}); }, "needs at least two groups, got 1"));
  BOOST_TEST(throws_with([] { st::one_way_anova({{1, 2}, {}}); }, "one_way_anova: group 1 is empty"));
  BOOST_TEST(throws_with([] { st::one_way_anova({{1}, {2}}); }, "2 values in 2 groups leave no within-group degrees"));
  BOOST_TEST(throws_with([] { st::one_way_anova({{1, 2}, {3, kNaN}}); }, "group 1: value 1 is not finite"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(roc)

void check_curve(const std::vector<st::RocPoint>& got, const Values& fpr, const Values& tpr, const Values& thr) {
  BOOST_TEST_REQUIRE(got.size() == fpr.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST(got[i].fpr == fpr[i], "point " << i);
    BOOST_TEST(got[i].tpr == tpr[i], "point " << i);
    BOOST_TEST(got[i].threshold == thr[i], "point " << i);
  }
}

BOOST_AUTO_TEST_CASE(scikit_learn_cases) {
  // scikit-learn's roc_curve documentation (y = [1, 1, 2, 2], pos_label 2):
  // fpr [0, 0, 0.5, 0.5, 1], tpr [0, 0.5, 0.5, 1, 1], thresholds [inf, 0.8, 0.4, 0.35, 0.1].
  check_curve(st::roc_curve(Values{0.1, 0.4, 0.35, 0.8}, Labels{0, 0, 1, 1}), {0, 0, 0.5, 0.5, 1},
              {0, 0.5, 0.5, 1, 1}, {kInf, 0.8, 0.4, 0.35, 0.1});
  // Ties, by hand (3 abnormal, 4 normal): at 0.9 one abnormal; at 0.8 one of each joins;
  // at 0.5 one abnormal and two normal; at 0.2 the last normal.
  check_curve(st::roc_curve(Values{0.5, 0.9, 0.2, 0.8, 0.5, 0.8, 0.5}, Labels{1, 1, 0, 0, 0, 1, 0}),
              {0, 0, 1.0 / 4, 3.0 / 4, 1}, {0, 1.0 / 3, 2.0 / 3, 1, 1}, {kInf, 0.9, 0.8, 0.5, 0.2});
  // All scores tied: one step from (0, 0) to (1, 1).
  check_curve(st::roc_curve(Values{2, 2, 2}, Labels{1, 0, 0}), {0, 1}, {0, 1}, {kInf, 2});
}

BOOST_AUTO_TEST_CASE(area_is_auc_with_ties) {
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> score(0, 9), label(0, 1);
  for (int trial = 0; trial < 20; ++trial) {
    Values s(150);
    Labels y(150);
    for (std::size_t i = 0; i < s.size(); ++i) {
      y[i] = static_cast<std::uint8_t>(label(rng));
      s[i] = score(rng) + y[i] * (score(rng) % 3);  // integer scores: many ties
    }
    y[0] = 0, y[1] = 1;
    const auto curve = st::roc_curve(s, y);
    double area = 0;
    for (std::size_t i = 1; i < curve.size(); ++i) {
      area += (curve[i].fpr - curve[i - 1].fpr) * (curve[i].tpr + curve[i - 1].tpr) / 2;
      BOOST_TEST(curve[i].threshold < curve[i - 1].threshold);
    }
    BOOST_TEST(curve.back().fpr == 1.0);
    BOOST_TEST(curve.back().tpr == 1.0);
    BOOST_TEST(std::abs(area - morphokd::test::auc_pairs(s, y)) < 1e-12, "trial " << trial);
    BOOST_TEST(std::abs(area - morphokd::metrics::roc_auc(s, y)) < 1e-12, "trial " << trial);
  }
}

BOOST_AUTO_TEST_CASE(bad_inputs) {
  BOOST_TEST(throws_with([] { st::roc_curve(Values{1, 2}, Labels{0, 0}); }, "got 2 normal, 0 abnormal"));
  BOOST_TEST(throws_with([] { st::roc_curve(Values{}, Labels{}); }, "roc_curve needs both"));
  BOOST_TEST(throws_with([] { st::roc_curve(Values{1, 2}, Labels{0}); }, "roc_curve: 2 scores but 1 labels"));
  BOOST_TEST(throws_with([] { st::roc_curve(Values{1, 2}, Labels{0, 2}); }, "label 2 at cell 1"));
  BOOST_TEST(throws_with([] { st::roc_curve(Values{kNaN, 2}, Labels{0, 1}); }, "score: value 0 is not finite"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bootstrap)

namespace {
// n draws of N(mean, 1).
Values normal_sample(std::size_t n, double mean, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(mean, 1.0);
  Values v(n);
  for (double& x : v) x = g(rng);
  return v;
}

// The weighted mean of a resample: sum m_i x_i / n.
st::WeightedStatistic mean_of(const Values& x) {
  return [&x](std::span<const double> m) {
    double s = 0;
    for (std::size_t i = 0; i < x.size(); ++i) s += m[i] * x[i];
    return s / static_cast<double>(x.size());
  };
}
}  // namespace

// For the mean of n = 200 normal values the bootstrap distribution is close to normal with
// sd s / sqrt(n), so the 95 % percentile interval is mean -+ 1.959964 s / sqrt(n). Each end
// must be within 10 % of that half-width (Monte Carlo error of a 2.5 % quantile of 2000
// resamples: about 3 % of the half-width); three data sets and seeds.
BOOST_AUTO_TEST_CASE(mean_matches_normal_theory) {
  for (const unsigned seed : {1u, 2u, 3u}) {
    const Values x = normal_sample(200, 10.0, seed);
    const st::MeanSd ms = st::mean_sd(x);
    const double half = 1.959964 * ms.sd / std::sqrt(200.0);
    const auto [lo, hi] = st::bootstrap_ci(x.size(), mean_of(x), 2000, seed);
    BOOST_TEST_MESSAGE("seed " << seed << ": [" << lo << ", " << hi << "] vs mean " << ms.mean << " -+ " << half);
    BOOST_TEST(std::abs(lo - (ms.mean - half)) < 0.1 * half, "seed " << seed);
    BOOST_TEST(std::abs(hi - (ms.mean + half)) < 0.1 * half, "seed " << seed);
  }
}

// Hanley & McNeil (1982): SE(AUC)^2 = (A(1 - A) + (nA - 1)(Q1 - A^2) + (nN - 1)(Q2 - A^2)) / (nA nN)
// with Q1 = A / (2 - A), Q2 = 2A^2 / (1 + A). The bootstrap's 95 % half-width must be
// 1.96 SE within 10 % (the formula assumes an exponential-like score model; Monte Carlo
// error of 2000 resamples ~3 %; measured here 3.5 %).
BOOST_AUTO_TEST_CASE(auc_matches_hanley_mcneil) {
  Values s = normal_sample(150, 0.0, 21), abnormal = normal_sample(150, 1.0, 22);
  Labels y(150, 0);
  s.insert(s.end(), abnormal.begin(), abnormal.end());
  y.resize(300, 1);
  const double a = morphokd::test::auc_pairs(s, y), na = 150, nn = 150;
  const double q1 = a / (2 - a), q2 = 2 * a * a / (1 + a);
  const double se = std::sqrt((a * (1 - a) + (na - 1) * (q1 - a * a) + (nn - 1) * (q2 - a * a)) / (na * nn));
  const auto [lo, hi] = morphokd::metrics::bootstrap_auc_ci(s, y, 2000, 7);
  BOOST_TEST_MESSAGE("AUC " << a << " CI [" << lo << ", " << hi << "], half-width " << (hi - lo) / 2
                            << " vs 1.96 SE " << 1.96 * se);
  BOOST_TEST(rel((hi - lo) / 2, 1.96 * se) < 0.10);
  BOOST_TEST(lo < a);
  BOOST_TEST(a < hi);
}

BOOST_AUTO_TEST_CASE(deterministic_per_seed) {
  const Values x = normal_sample(50, 0.0, 4);
  const auto first = st::bootstrap_ci(x.size(), mean_of(x), 500, 11);
  const auto again = st::bootstrap_ci(x.size(), mean_of(x), 500, 11);
  BOOST_TEST(first.first == again.first);
  BOOST_TEST(first.second == again.second);
  const auto other = st::bootstrap_ci(x.size(), mean_of(x), 500, 12);
  BOOST_TEST(other.first != first.first);
  BOOST_TEST(other.second != first.second);
  const auto narrow = st::bootstrap_ci(x.size(), mean_of(x), 500, 11, 0.5);
  BOOST_TEST(first.first < narrow.first);
  BOOST_TEST(narrow.second < first.second);
}

// The documented stream, by hand: draw d's cell j is floor(uniform01(seed, d n + j) n); a
// draw whose statistic is NaN (here: cell 0 not drawn) is replaced by the next draw.
BOOST_AUTO_TEST_CASE(draws_follow_the_documented_stream) {
  const Values x{3, -1, 4, 1, -5, 9, 2, 6};  // integers: the weighted sums are exact
  const std::uint64_t n = x.size(), seed = 77;
  std::vector<Values> seen;
  const auto statistic = [&](std::span<const double> m) {
    seen.emplace_back(m.begin(), m.end());
    if (m[0] == 0) return kNaN;
    double s = 0;
    for (std::size_t i = 0; i < x.size(); ++i) s += m[i] * x[i];
    return s;
  };
  const int resamples = 200;
  const auto [lo, hi] = st::bootstrap_ci(n, statistic, resamples, seed, 0.9);
  Values kept;
  std::size_t redrawn = 0;
  for (std::uint64_t d = 0; d < seen.size(); ++d) {
    Values m(n, 0.0);
    for (std::uint64_t j = 0; j < n; ++j)
      m[static_cast<std::size_t>(std::floor(morphokd::uniform01(seed, d * n + j) * n))] += 1;
    BOOST_TEST(m == seen[d], boost::test_tools::per_element());
    if (m[0] == 0) {
      ++redrawn;
      continue;
    }
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += m[i] * x[i];
    kept.push_back(s);
  }
  BOOST_TEST(kept.size() == static_cast<std::size_t>(resamples));  // stopped at the last needed draw
  BOOST_TEST(redrawn > 0u);                                        // (7/8)^8 = 34 % of draws miss cell 0
  const double tail = (1 - 0.9) / 2;  // the documented q: 0.04999999999999999, not 0.05
  BOOST_TEST(lo == np_percentile(kept, tail));
  BOOST_TEST(hi == np_percentile(kept, 1 - tail));
}

BOOST_AUTO_TEST_CASE(auc_ci_is_the_generic_bootstrap) {
  // Two abnormal cells of 14 with tied scores: many draws have one class only and are redrawn.
  const Values s{0.3, 0.1, 0.4, 0.1, 0.5, 0.9, 0.2, 0.6, 0.5, 0.3, 0.5, 0.8, 0.9, 0.7};
  Labels y(s.size(), 0);
  y[4] = y[12] = 1;
  for (const std::uint64_t seed : {0u, 5u, 123u}) {
    std::size_t undefined = 0;
    const auto mine = st::bootstrap_ci(
        s.size(),
        [&](std::span<const double> m) {
          const double a = weighted_auc_pairs(s, y, m);
          undefined += std::isnan(a);
          return a;
        },
        400, seed, 0.9);
    const auto ours = morphokd::metrics::bootstrap_auc_ci(s, y, 400, seed, 0.9);
    BOOST_TEST(undefined > 0u);
    BOOST_TEST(ours.first == mine.first, "seed " << seed);  // integer and half sums: exact
    BOOST_TEST(ours.second == mine.second, "seed " << seed);
  }
}

BOOST_AUTO_TEST_CASE(undefined_statistic_gives_up) {
  int calls = 0;
  const auto never = [&](std::span<const double>) {
    ++calls;
    return kNaN;
  };
  BOOST_TEST(throws_with([&] { st::bootstrap_ci(5, never, 7, 1); }, "bootstrap: 700 draws gave only 0 resamples"));
  BOOST_TEST(calls == 700);
}

BOOST_AUTO_TEST_CASE(bad_arguments) {
  const Values x{1, 2, 3};
  BOOST_TEST(throws_with([&] { st::bootstrap_ci(0, mean_of(x)); }, "bootstrap: needs at least one cell"));
  BOOST_TEST(throws_with([&] { st::bootstrap_ci(3, st::WeightedStatistic{}); }, "bootstrap: no statistic"));
  BOOST_TEST(throws_with([&] { st::bootstrap_ci(3, mean_of(x), 0); }, "bootstrap: resamples must be >= 1, got 0"));
  BOOST_TEST(throws_with([&] { st::bootstrap_ci(3, mean_of(x), 10, 0, 0.0); }, "bootstrap: level must be in (0, 1)"));
  BOOST_TEST(throws_with([&] { st::bootstrap_ci(3, mean_of(x), 10, 0, 1.0); }, "bootstrap: level must be in (0, 1)"));
}

BOOST_AUTO_TEST_SUITE_END()
