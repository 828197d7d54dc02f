// morphokd's embedding API: everything a host program needs to score cells with a trained
// run directory. Link the static library (CMake: find_package(morphokd), target
// morphokd::morphokd) and include only this header.
//
//   morphokd::AnomalyDetector det = morphokd::AnomalyDetector::open("runs/head");
//   morphokd::CellScores r = det.score(cells, n);   // n gray 64x64 cells, values in [0, 1]
//   r.abnormal[i], r.scores[i], r.threshold
//
// Errors (missing or corrupt run files, bad input) throw morphokd::Error, whose message is
// one line naming the file or input and the problem.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "morphokd/error.hpp"

namespace morphokd {

namespace pipeline {
class Detector;
}

struct CellScores {
  std::vector<double> scores;  // higher = more abnormal
  std::vector<bool> abnormal;  // score > threshold
  double threshold = 0;
  std::string threshold_rule;  // "f1", "youden" or "normal-p95": fitted on the run's validation split
};

class AnomalyDetector {
 public:
  // Opens RUN (run.json, student.safetensors, the teacher it names) and checks their SHA-256.
  static AnomalyDetector open(const std::string& run_dir, const std::string& threshold_rule = "f1");

  // `cells`: n row-major 64x64 gray images, values in [0, 1] (e.g. uint8 / 255).
  CellScores score(const float* cells, std::int64_t n);

  const std::string& part() const { return part_; }  // head, vacuole, acrosome or tail
  double threshold() const { return threshold_; }

  AnomalyDetector(AnomalyDetector&&) noexcept;
  AnomalyDetector& operator=(AnomalyDetector&&) noexcept;
  ~AnomalyDetector();

 private:
  AnomalyDetector() = default;
  std::unique_ptr<pipeline::Detector> detector_;
  std::string part_, rule_;
  double threshold_ = 0;
};

}  // namespace morphokd
