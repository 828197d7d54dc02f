#include <cmath>
#include <cstring>

#include "morphokd/pipeline/detector.hpp"

#include "morphokd/morphokd.hpp"
#include "morphokd/pipeline/run.hpp"

namespace morphokd {

AnomalyDetector::AnomalyDetector(AnomalyDetector&&) noexcept = default;
AnomalyDetector& AnomalyDetector::operator=(AnomalyDetector&&) noexcept = default;
AnomalyDetector::~AnomalyDetector() = default;

AnomalyDetector AnomalyDetector::open(const std::string& run_dir, const std::string& threshold_rule) {
  const pipeline::RunInfo run = pipeline::read_run(run_dir);
  const auto it = run.thresholds.find(threshold_rule);
  if (it == run.thresholds.end()) fail(run_dir + ": run.json has no " + quote(threshold_rule) + " threshold");
  AnomalyDetector d;
  d.detector_ = pipeline::open_detector(run_dir, run);
  d.part_ = run.config.part;
  d.rule_ = threshold_rule;
  d.threshold_ = it->second;
  return d;
}

CellScores AnomalyDetector::score(const float* cells, std::int64_t n) {
  check(cells != nullptr && n > 0, "score: no cells given");
  Tensor t = Tensor::empty({n, 1, 64, 64});
  std::memcpy(t.data(), cells, sizeof(float) * static_cast<std::size_t>(t.numel()));
  for (Index i = 0; i < t.numel(); ++i)
    if (!(t.data()[i] >= 0.0f && t.data()[i] <= 1.0f))
      fail("score: pixel " + std::to_string(i % 4096) + " of cell " + std::to_string(i / 4096) + " is not in [0, 1]");
  CellScores r;
  r.scores = detector_->score(t);
  r.threshold = threshold_;
  r.threshold_rule = rule_;
  for (double s : r.scores) r.abnormal.push_back(s > threshold_);
  return r;
}

}  // namespace morphokd
