// Detection metrics. Labels: 1 = abnormal, 0 = normal. A cell is called abnormal when its
// score > threshold. Undefined ratios (0/0) are 0, as scikit-learn's zero_division=0.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <utility>

namespace morphokd::metrics {

// ROC AUC with abnormal as the positive class; tied scores count one half (scikit-learn's
// roc_auc_score). Error if either class is absent.
double roc_auc(std::span<const double> scores, std::span<const std::uint8_t> labels);
// The same with cell i counted weight[i] times (a bootstrap draw's multiplicities): equal to
// roc_auc of the cells repeated so. Error if either class has no weight.
double roc_auc(std::span<const double> scores, std::span<const std::uint8_t> labels, std::span<const double> weight);

// Percentile bootstrap CI of the AUC: `resamples` draws of n cells with replacement from
// a counter-based stream of `seed`; draws with one class only are redrawn.
std::pair<double, double> bootstrap_auc_ci(std::span<const double> scores, std::span<const std::uint8_t> labels,
                                           int resamples = 1000, std::uint64_t seed = 0, double level = 0.95);

struct Confusion {
  std::int64_t tp = 0, fp = 0, tn = 0, fn = 0;
};

// abnormal_positive: positive = abnormal (label 1, called abnormal). Otherwise MHSMA's
// published convention: positive = normal (label 0, called normal).
Confusion confusion(std::span<const double> scores, std::span<const std::uint8_t> labels, double threshold,
                    bool abnormal_positive);

struct Classification {
  double accuracy = 0, precision = 0, recall = 0, f1 = 0, f05 = 0;
  double gmean = 0;  // sqrt(precision * recall), MHSMA's "G-mean"
  double mcc = 0;    // Matthews correlation; 0 when a marginal is empty
  Confusion counts;
};
Classification classify(const Confusion& c);

// Threshold rules, fitted on validation scores only:
//   "f1"         maximises F1 (abnormal positive)
//   "youden"     maximises TPR - FPR
//   "normal-pXX" the XX-th percentile (0 < XX < 100, may have decimals, e.g. normal-p97.5)
//                of the normal cells' scores, linear interpolation as numpy.percentile
// Candidates for f1/youden are every distinct score and -inf (all abnormal); ties in the
// objective go to the smallest threshold. Error for an unknown rule or an unusable split.
double fit_threshold(const std::string& rule, std::span<const double> scores, std::span<const std::uint8_t> labels);

}  // namespace morphokd::metrics
