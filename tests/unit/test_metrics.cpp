// Detection metrics against published numbers, hand-computed cases and brute-force references.
#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "morphokd/error.hpp"
#include "morphokd/method/metrics.hpp"
#include "morphokd/random.hpp"
#include "support.hpp"

namespace m = morphokd::metrics;
using Labels = std::vector<std::uint8_t>;
using Scores = std::vector<double>;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

using morphokd::test::auc_pairs;  // independent oracles, support/oracles.hpp
using morphokd::test::np_percentile;
using morphokd::test::throws_with;

// Random cells with integer scores in [0, levels): many ties.
void random_cells(std::mt19937& rng, std::size_t n, int levels, Scores& s, Labels& y) {
  std::uniform_int_distribution<int> score(0, levels - 1), label(0, 1);
  s.resize(n);
  y.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    y[i] = static_cast<std::uint8_t>(label(rng));
    s[i] = score(rng) + 0.5 * y[i] * (score(rng) % 3);  // mild separation, still tied
  }
  y[0] = 0, y[1] = 1;  // both classes always present
}

// The MHSMA row as labelled cells, normal positive at threshold 0.5: 171 normal called
// normal (TP), 28 abnormal called normal (FP; at exactly 0.5, which is "not > t"),
// 42 normal called abnormal (FN), 59 abnormal called abnormal (TN).
void mhsma_cells(Scores& s, Labels& y) {
  auto add = [&](int count, double score, std::uint8_t label) {
    s.insert(s.end(), count, score);
    y.insert(y.end(), count, label);
  };
  add(171, 0.2, 0);
  add(28, 0.5, 1);
  add(42, 0.9, 0);
  add(59, 0.7, 1);
}

void check_mhsma(const m::Classification& r) {
  // Javadi 2019, acrosome: accuracy 76.67 %, F0.5 84.74 %, MCC 0.4618.
  BOOST_TEST(std::abs(r.accuracy - 0.7667) < 5e-5);
  BOOST_TEST(std::abs(r.f05 - 0.8474) < 5e-5);
  BOOST_TEST(std::abs(r.mcc - 0.4618) < 5e-5);
  BOOST_TEST(std::abs(r.precision - 171.0 / 199.0) < 1e-15);
  BOOST_TEST(std::abs(r.recall - 171.0 / 213.0) < 1e-15);
  const double p = 171.0 / 199.0, q = 171.0 / 213.0;
  BOOST_TEST(std::abs(r.f1 - 2 * p * q / (p + q)) < 1e-15);
  BOOST_TEST(std::abs(r.gmean - std::sqrt(p * q)) < 1e-15);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(classification)

BOOST_AUTO_TEST_CASE(mhsma_javadi_acrosome_direct) {
  const m::Classification r = m::classify(m::Confusion{.tp = 171, .fp = 28, .tn = 59, .fn = 42});
  check_mhsma(r);
  BOOST_TEST(r.counts.tp == 171);
  BOOST_TEST(r.counts.fn == 42);
}

BOOST_AUTO_TEST_CASE(mhsma_javadi_acrosome_through_confusion) {
  Scores s;
  Labels y;
  mhsma_cells(s, y);
  const m::Confusion c = m::confusion(s, y, 0.5, false);
  BOOST_TEST(c.tp == 171);
  BOOST_TEST(c.fp == 28);
  BOOST_TEST(c.fn == 42);
  BOOST_TEST(c.tn == 59);
  check_mhsma(m::classify(c));
  // Abnormal positive: the same cells with the roles swapped.
  const m::Confusion a = m::confusion(s, y, 0.5, true);
  BOOST_TEST(a.tp == 59);
  BOOST_TEST(a.fp == 42);
  BOOST_TEST(a.tn == 171);
  BOOST_TEST(a.fn == 28);
}

BOOST_AUTO_TEST_CASE(zero_division_is_zero) {
  const m::Classification none = m::classify(m::Confusion{});
  BOOST_TEST(none.accuracy == 0.0);
  BOOST_TEST(none.precision == 0.0);
  BOOST_TEST(none.f1 == 0.0);
  BOOST_TEST(none.mcc == 0.0);
  // Nothing called positive: precision, recall, F-scores, G-mean and MCC are 0, not NaN.
  const m::Classification r = m::classify(m::Confusion{.tp = 0, .fp = 0, .tn = 5, .fn = 5});
  BOOST_TEST(r.accuracy == 0.5);
  BOOST_TEST(r.precision == 0.0);
  BOOST_TEST(r.recall == 0.0);
  BOOST_TEST(r.f1 == 0.0);
  BOOST_TEST(r.f05 == 0.0);
  BOOST_TEST(r.gmean == 0.0);
  BOOST_TEST(r.mcc == 0.0);
  // A perfect classifier.
  const m::Classification p = m::classify(m::Confusion{.tp = 3, .fp = 0, .tn = 4, .fn = 0});
  BOOST_TEST(p.accuracy == 1.0);
  BOOST_TEST(p.f05 == 1.0);
  BOOST_TEST(p.mcc == 1.0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(auc)

BOOST_AUTO_TEST_CASE(hand_cases) {
  BOOST_TEST(m::roc_auc(Scores{0.1, 0.4, 0.35, 0.8}, Labels{0, 0, 1, 1}) == 0.75);  // sklearn docs
  BOOST_TEST(m::roc_auc(Scores{3, 3, 3, 3, 3}, Labels{0, 1, 0, 1, 1}) == 0.5);      // all tied
  BOOST_TEST(m::roc_auc(Scores{1, 2, 3, 4}, Labels{0, 0, 1, 1}) == 1.0);            // perfect
  BOOST_TEST(m::roc_auc(Scores{1, 2, 3, 4}, Labels{1, 1, 0, 0}) == 0.0);            // reversed
  BOOST_TEST(m::roc_auc(Scores{1, 1, 2, 2}, Labels{0, 1, 0, 1}) == 0.5);
  BOOST_TEST(m::roc_auc(Scores{1, 2, 2, 3}, Labels{0, 0, 1, 1}) == 0.875);  // (1 + 0.5 + 1 + 1) / 4
}

BOOST_AUTO_TEST_CASE(matches_pair_counting_with_ties) {
  std::mt19937 rng(7);
  Scores s;
  Labels y;
  for (int trial = 0; trial < 20; ++trial) {
    random_cells(rng, 200, 12, s, y);
    BOOST_TEST(std::abs(m::roc_auc(s, y) - auc_pairs(s, y)) < 1e-12);
  }
}

// Weighted AUC = pair counting on the cells repeated weight[i] times (a bootstrap draw).
BOOST_AUTO_TEST_CASE(weighted_equals_repeated_cells) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> times(0, 3);
  Scores s;
  Labels y;
  for (int trial = 0; trial < 20; ++trial) {
    random_cells(rng, 120, 9, s, y);
    Scores w(s.size()), rs;
    Labels ry;
    for (std::size_t i = 0; i < s.size(); ++i) {
      w[i] = i < 2 ? 1 : times(rng);  // cells 0 and 1 keep both classes present
      rs.insert(rs.end(), static_cast<std::size_t>(w[i]), s[i]);
      ry.insert(ry.end(), static_cast<std::size_t>(w[i]), y[i]);
    }
    BOOST_TEST(std::abs(m::roc_auc(s, y, w) - auc_pairs(rs, ry)) < 1e-12);
  }
  const Scores two{0.1, 0.9};
  const Labels ny{0, 1};
  BOOST_CHECK_THROW(m::roc_auc(two, ny, Scores{1, 0}), morphokd::Error);   // no abnormal weight
  BOOST_CHECK_THROW(m::roc_auc(two, ny, Scores{1, -1}), morphokd::Error);  // negative
  BOOST_CHECK_THROW(m::roc_auc(two, ny, Scores{1}), morphokd::Error);      // length
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(errors)

BOOST_AUTO_TEST_CASE(bad_inputs) {
  BOOST_TEST(throws_with([] { m::roc_auc(Scores{1, 2, 3}, Labels{0, 0, 0}); }, "got 3 normal, 0 abnormal"));
  BOOST_TEST(throws_with([] { m::roc_auc(Scores{1, 2}, Labels{1, 1}); }, "got 0 normal, 2 abnormal"));
  BOOST_TEST(throws_with([] { m::roc_auc(Scores{}, Labels{}); }, "got 0 normal, 0 abnormal"));
  BOOST_TEST(throws_with([] { m::roc_auc(Scores{1, 2, 3}, Labels{0, 1}); }, "3 scores but 2 labels"));
  BOOST_TEST(throws_with([] { m::roc_auc(Scores{1, 2, 3}, Labels{0, 1, 2}); }, "label 2 at cell 2"));
  BOOST_TEST(throws_with([] { m::confusion(Scores{1, 2}, Labels{0, 2}, 0, true); }, "label 2"));
  BOOST_TEST(throws_with([] { m::confusion(Scores{1, 2}, Labels{0}, 0, true); }, "2 scores but 1 labels"));
  BOOST_TEST(throws_with([] { m::roc_auc(Scores{1, std::nan("")}, Labels{0, 1}); }, "cell 1 is not finite"));
  BOOST_TEST(throws_with([] { m::bootstrap_auc_ci(Scores{1, 2}, Labels{1, 1}); }, "got 0 normal, 2 abnormal"));
  BOOST_TEST(throws_with([] { m::bootstrap_auc_ci(Scores{1, 2}, Labels{0, 1}, 0); }, "resamples"));
  BOOST_TEST(throws_with([] { m::bootstrap_auc_ci(Scores{1, 2}, Labels{0, 1}, 10, 0, 1.0); }, "level"));
}

BOOST_AUTO_TEST_CASE(bad_threshold_rules) {
  const Scores s{1, 2, 3, 4};
  const Labels y{0, 0, 1, 1};
  for (const std::string rule : {"foo", "F1", "", "normal-p", "normal-p100", "normal-p0", "normal-p-5",
                                 "normal-p95x", "normal-p 95", "normal-pnan", "normal-pinf", "normal-95"})
    BOOST_TEST(throws_with([&] { m::fit_threshold(rule, s, y); }, "--threshold-rule"), "rule '" << rule << "'");
  // Unusable splits: f1/youden need both classes, percentiles need a normal cell.
  BOOST_TEST(throws_with([] { m::fit_threshold("f1", Scores{1, 2}, Labels{0, 0}); }, "got 2 normal, 0 abnormal"));
  BOOST_TEST(throws_with([] { m::fit_threshold("youden", Scores{}, Labels{}); }, "--threshold-rule youden"));
  BOOST_TEST(throws_with([] { m::fit_threshold("normal-p50", Scores{1}, Labels{1}); }, "at least one normal"));
  BOOST_TEST(throws_with([] { m::fit_threshold("f1", Scores{1, 2}, Labels{0, 3}); }, "label 3"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(thresholds)

BOOST_AUTO_TEST_CASE(hand_example) {
  // t:      -inf  1     2     3     4    5    6
  // F1:     6/9   6/8   6/7   4/6   4/5  2/4  0     -> 2
  // Youden: 0     1/3   2/3   1/3   2/3  1/3  0     -> tie between 2 and 4, smallest wins
  const Scores s{4, 1, 3, 2, 6, 5};
  const Labels y{0, 0, 1, 0, 1, 1};
  BOOST_TEST(m::fit_threshold("f1", s, y) == 2.0);
  BOOST_TEST(m::fit_threshold("youden", s, y) == 2.0);
  // A split where the two rules differ: F1 keeps everything abnormal.
  // sorted labels: abnormal, normal, abnormal, abnormal (3 abnormal, 1 normal)
  // t:      -inf   1     2     3     4
  // F1:     6/7    4/6   4/5   2/4   0    -> -inf
  // Youden: 0      -1/3  2/3   1/3   0    -> 2
  BOOST_TEST(m::fit_threshold("f1", Scores{1, 2, 3, 4}, Labels{1, 0, 1, 1}) == -kInf);
  BOOST_TEST(m::fit_threshold("youden", Scores{1, 2, 3, 4}, Labels{1, 0, 1, 1}) == 2.0);
  // Reversed scores: nothing beats "all abnormal" (Youden 0 at -inf).
  BOOST_TEST(m::fit_threshold("youden", Scores{1, 2, 3, 4}, Labels{1, 1, 0, 0}) == -kInf);
}

BOOST_AUTO_TEST_CASE(returned_threshold_is_first_maximiser) {
  std::mt19937 rng(11);
  Scores s;
  Labels y;
  for (int trial = 0; trial < 40; ++trial) {
    random_cells(rng, 60, 15, s, y);
    Scores candidates = s;
    candidates.push_back(-kInf);
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    for (const std::string rule : {"f1", "youden"}) {
      auto value = [&](double t) {
        const m::Classification r = m::classify(m::confusion(s, y, t, true));
        const m::Confusion& c = r.counts;
        return rule == "f1" ? r.f1 : r.recall - static_cast<double>(c.fp) / static_cast<double>(c.fp + c.tn);
      };
      double best = -kInf;
      for (const double t : candidates) best = std::max(best, value(t));
      double first = kInf;  // smallest candidate reaching the maximum (distinct values differ by >> 1e-12)
      for (const double t : candidates)
        if (value(t) > best - 1e-12) {
          first = t;
          break;
        }
      const double fitted = m::fit_threshold(rule, s, y);
      BOOST_TEST(fitted == first, rule << " trial " << trial);
      BOOST_TEST(value(fitted) > best - 1e-12);
    }
  }
}

BOOST_AUTO_TEST_CASE(normal_percentiles) {
  // Abnormal cells (label 1) are ignored, whatever their scores.
  const Scores s{4, 100, 2, -50, 3, 1};
  const Labels y{0, 1, 0, 1, 0, 0};
  BOOST_TEST(std::abs(m::fit_threshold("normal-p50", s, y) - 2.5) < 1e-12);
  BOOST_TEST(std::abs(m::fit_threshold("normal-p95", s, y) - 3.85) < 1e-12);    // numpy: 3 + 0.85 * (4 - 3)
  BOOST_TEST(std::abs(m::fit_threshold("normal-p97.5", s, y) - 3.925) < 1e-12);  // position 2.925
  BOOST_TEST(std::abs(m::fit_threshold("normal-p10", s, y) - 1.3) < 1e-12);      // position 0.3
  BOOST_TEST(m::fit_threshold("normal-p50", Scores{7}, Labels{0}) == 7.0);       // one normal cell
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bootstrap)

namespace {
// Moderately separated: normal ~ N(0, 1), abnormal ~ N(1, 1), 100 each.
void separated(Scores& s, Labels& y) {
  std::mt19937 rng(3);
  std::normal_distribution<double> g(0.0, 1.0);
  for (int i = 0; i < 200; ++i) {
    y.push_back(static_cast<std::uint8_t>(i % 2));
    s.push_back(g(rng) + y.back());
  }
}
}  // namespace

BOOST_AUTO_TEST_CASE(interval_properties) {
  Scores s;
  Labels y;
  separated(s, y);
  const double auc = m::roc_auc(s, y);
  const auto [lo, hi] = m::bootstrap_auc_ci(s, y, 1000, 42);
  BOOST_TEST_MESSAGE("AUC " << auc << " CI [" << lo << ", " << hi << "]");
  BOOST_TEST(lo < auc);
  BOOST_TEST(auc < hi);
  BOOST_TEST(hi - lo > 0.02);  // n = 200: width ~ 0.13
  BOOST_TEST(hi - lo < 0.3);
  const auto same = m::bootstrap_auc_ci(s, y, 1000, 42);
  BOOST_TEST(same.first == lo);
  BOOST_TEST(same.second == hi);
  const auto other = m::bootstrap_auc_ci(s, y, 1000, 43);
  BOOST_TEST((other.first != lo || other.second != hi));
  const auto narrow = m::bootstrap_auc_ci(s, y, 1000, 42, 0.5);
  BOOST_TEST(lo < narrow.first);
  BOOST_TEST(narrow.second < hi);
}

BOOST_AUTO_TEST_CASE(perfect_separation_is_one) {
  const auto [lo, hi] = m::bootstrap_auc_ci(Scores{1, 2, 3, 4, 5, 6}, Labels{0, 0, 0, 1, 1, 1}, 500, 1);
  BOOST_TEST(lo == 1.0);
  BOOST_TEST(hi == 1.0);
  // Two cells: half of all draws have one class only and must be redrawn.
  const auto two = m::bootstrap_auc_ci(Scores{0, 1}, Labels{0, 1}, 200, 5);
  BOOST_TEST(two.first == 1.0);
  BOOST_TEST(two.second == 1.0);
}

// The documented stream, materialised naively: draw r uses values r*n + j of stream `seed`,
// cell floor(u * n); one-class draws are skipped; numpy-style percentiles of the AUCs.
BOOST_AUTO_TEST_CASE(matches_naive_resampling) {
  std::mt19937 rng(5);
  Scores s;
  Labels y;
  random_cells(rng, 25, 6, s, y);  // small n: some draws have one class only
  y.assign(y.size(), 0);
  y[3] = y[10] = 1;
  const std::uint64_t n = s.size(), seed = 9;
  const int resamples = 300;
  Scores aucs;
  for (std::uint64_t r = 0; aucs.size() < static_cast<std::size_t>(resamples); ++r) {
    Scores rs;
    Labels ry;
    for (std::uint64_t j = 0; j < n; ++j) {
      const auto k = static_cast<std::size_t>(std::floor(morphokd::uniform01(seed, r * n + j) * n));
      rs.push_back(s[k]);
      ry.push_back(y[k]);
    }
    const auto abnormal = static_cast<std::uint64_t>(std::count(ry.begin(), ry.end(), 1));
    if (abnormal == 0 || abnormal == n) continue;  // one class only: redrawn
    aucs.push_back(auc_pairs(rs, ry));
  }
  const auto [lo, hi] = m::bootstrap_auc_ci(s, y, resamples, seed, 0.9);
  BOOST_TEST(std::abs(lo - np_percentile(aucs, 0.05)) < 1e-12);
  BOOST_TEST(std::abs(hi - np_percentile(aucs, 0.95)) < 1e-12);
}

BOOST_AUTO_TEST_SUITE_END()
