#include "morphokd/method/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "morphokd/error.hpp"
#include "morphokd/method/stats.hpp"

namespace morphokd::metrics {

namespace {

struct ClassCounts {
  std::int64_t normal = 0, abnormal = 0;
};

// Every entry point checks its input the same way; non-finite scores are rejected because
// they break sorting (NaN) or the percentile interpolation (inf - inf).
ClassCounts validate(std::span<const double> scores, std::span<const std::uint8_t> labels) {
  check(scores.size() == labels.size(), "metrics: " + std::to_string(scores.size()) + " scores but " +
                                            std::to_string(labels.size()) + " labels");
  ClassCounts c;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    check(labels[i] <= 1, "metrics: label " + std::to_string(labels[i]) + " at cell " + std::to_string(i) +
                              " is neither 0 (normal) nor 1 (abnormal)");
    check(std::isfinite(scores[i]), "metrics: score at cell " + std::to_string(i) + " is not finite");
    (labels[i] ? c.abnormal : c.normal)++;
  }
  return c;
}

void require_both_classes(const ClassCounts& c, const std::string& what) {
  check(c.normal > 0 && c.abnormal > 0, what + " needs both normal and abnormal cells; got " +
                                            std::to_string(c.normal) + " normal, " + std::to_string(c.abnormal) +
                                            " abnormal");
}

// Cell indices in ascending score order (stable, so the result is deterministic).
std::vector<std::size_t> ascending(std::span<const double> scores) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  return order;
}

// Mann-Whitney AUC over cells sorted by score, cell i counted weight[i] times: each
// abnormal cell scores 1 per normal cell strictly below it and 1/2 per tied normal cell.
// All sums are integers or halves, hence exact in double (up to 2^53 pairs). NaN when the
// weights leave one class only.
double auc_sorted(const std::vector<std::size_t>& order, std::span<const double> scores,
                  std::span<const std::uint8_t> labels, std::span<const double> weight) {
  double normal_below = 0, abnormal_total = 0, wins = 0;
  for (std::size_t i = 0; i < order.size();) {
    double pos = 0, neg = 0;
    std::size_t j = i;
    for (; j < order.size() && scores[order[j]] == scores[order[i]]; ++j)
      (labels[order[j]] ? pos : neg) += weight[order[j]];
    wins += pos * normal_below + 0.5 * pos * neg;
    normal_below += neg;
    abnormal_total += pos;
    i = j;
  }
  if (abnormal_total == 0 || normal_below == 0) return std::numeric_limits<double>::quiet_NaN();
  return wins / (abnormal_total * normal_below);
}

double ratio(double a, double b) { return b == 0 ? 0.0 : a / b; }

}  // namespace

double roc_auc(std::span<const double> scores, std::span<const std::uint8_t> labels) {
  require_both_classes(validate(scores, labels), "AUC");
  return auc_sorted(ascending(scores), scores, labels, std::vector<double>(scores.size(), 1.0));
}

double roc_auc(std::span<const double> scores, std::span<const std::uint8_t> labels, std::span<const double> weight) {
  validate(scores, labels);
  check(weight.size() == scores.size(), "metrics: " + std::to_string(weight.size()) + " weights for " +
                                            std::to_string(scores.size()) + " cells");
  for (double w : weight) check(w >= 0 && std::isfinite(w), "metrics: a weight is negative or not finite");
  const double auc = auc_sorted(ascending(scores), scores, labels, weight);
  check(!std::isnan(auc), "AUC needs both normal and abnormal cells with weight");
  return auc;
}

std::pair<double, double> bootstrap_auc_ci(std::span<const double> scores, std::span<const std::uint8_t> labels,
                                           int resamples, std::uint64_t seed, double level) {
  require_both_classes(validate(scores, labels), "AUC");
  // Sort once; a resample is then a vector of multiplicities, and its AUC (identical to
  // roc_auc on the materialised resample) costs O(n) instead of O(n log n). A draw with one
  // class only gives NaN and is redrawn.
  const std::vector<std::size_t> order = ascending(scores);
  return stats::bootstrap_ci(
      scores.size(), [&](std::span<const double> weight) { return auc_sorted(order, scores, labels, weight); },
      resamples, seed, level);
}

Confusion confusion(std::span<const double> scores, std::span<const std::uint8_t> labels, double threshold,
                    bool abnormal_positive) {
  validate(scores, labels);
  check(!std::isnan(threshold), "metrics: threshold is NaN");
  Confusion c;  // abnormal-positive counts first; the other convention is their mirror image
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const bool called_abnormal = scores[i] > threshold;
    if (labels[i])
      (called_abnormal ? c.tp : c.fn)++;
    else
      (called_abnormal ? c.fp : c.tn)++;
  }
  if (!abnormal_positive) c = Confusion{c.tn, c.fn, c.tp, c.fp};
  return c;
}

Classification classify(const Confusion& c) {
  const double tp = c.tp, fp = c.fp, tn = c.tn, fn = c.fn;
  Classification r;
  r.counts = c;
  r.accuracy = ratio(tp + tn, tp + fp + tn + fn);
  r.precision = ratio(tp, tp + fp);
  r.recall = ratio(tp, tp + fn);
  const double p = r.precision, q = r.recall;
  r.f1 = ratio(2 * p * q, p + q);
  r.f05 = ratio(1.25 * p * q, 0.25 * p + q);
  r.gmean = std::sqrt(p * q);
  const double marginals = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn);
  r.mcc = marginals == 0 ? 0.0 : (tp * tn - fp * fn) / std::sqrt(marginals);
  return r;
}

double fit_threshold(const std::string& rule, std::span<const double> scores, std::span<const std::uint8_t> labels) {
  const ClassCounts counts = validate(scores, labels);
  const std::string prefix = "normal-p";
  if (rule.starts_with(prefix)) {
    const char* first = rule.data() + prefix.size();
    const char* last = rule.data() + rule.size();
    double xx = 0;
    const auto [end, ec] = std::from_chars(first, last, xx);
    check(first != last && ec == std::errc{} && end == last && xx > 0 && xx < 100,
          "--threshold-rule: " + quote(rule) + " needs a percentile 0 < XX < 100, e.g. normal-p95");
    check(counts.normal > 0, "--threshold-rule " + rule + " needs at least one normal cell; got 0");
    std::vector<double> normal;
    for (std::size_t i = 0; i < scores.size(); ++i)
      if (!labels[i]) normal.push_back(scores[i]);
    return stats::percentile(std::move(normal), xx / 100);
  }
  const bool f1 = rule == "f1";
  check(f1 || rule == "youden", "--threshold-rule: unknown rule " + quote(rule) + " (expected f1, youden or normal-pXX)");
  require_both_classes(counts, "--threshold-rule " + rule);

  // Sweep thresholds upwards from -inf (all abnormal); passing a group of tied scores
  // moves that group to "called normal". Strictly-better keeps the smallest threshold.
  const std::int64_t pos = counts.abnormal, neg = counts.normal;
  std::int64_t tp = pos, fp = neg;
  auto objective = [&] {
    // Youden J = (tp*neg - fp*pos) / (pos*neg): compare the exact integer numerator so
    // equal J values tie exactly. F1 = 2tp / (2tp + fp + fn), a correctly rounded ratio.
    if (!f1) return static_cast<double>(tp * neg - fp * pos);
    return ratio(2.0 * tp, 2.0 * tp + fp + (pos - tp));
  };
  double best_t = -std::numeric_limits<double>::infinity(), best = objective();
  const std::vector<std::size_t> order = ascending(scores);
  for (std::size_t i = 0; i < order.size();) {
    const double t = scores[order[i]];
    for (; i < order.size() && scores[order[i]] == t; ++i) (labels[order[i]] ? tp : fp)--;
    if (const double v = objective(); v > best) best = v, best_t = t;
  }
  return best_t;
}

}  // namespace morphokd::metrics
