// Audit records (`eval`/`score --audit FILE`): one JSON line per decision with everything an
// auditor needs to re-derive it: morphokd's version and build, the command line, the input
// file's SHA-256 and the cell's own (of the 64x64 float32 values in [0, 1] the detector
// saw), teacher and student SHA-256, the score rule, each score pool's distance term (the
// paper's Fig. 5 distance vector), the score, the threshold and its rule, and the call.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "morphokd/pipeline/run.hpp"
#include "morphokd/tensor.hpp"

namespace morphokd::pipeline {

struct AuditContext {
  std::string command;      // the call, as typed
  std::string input_file;   // cells .npy or image folder
  std::string threshold_rule;
  double threshold = 0;
};

// Writes `file` atomically: line i for row i of `cells` [N, 1, H, W]. `terms` N x L over
// run.config.score_layers, combined by `rule` (with its calibration); `names` (image files)
// and `labels` may be empty.
void write_audit(const std::string& file, const AuditContext& context, const RunInfo& run,
                 const method::ScoreRule& rule, const Tensor& cells,
                 std::span<const std::string> names, std::span<const std::uint8_t> labels,
                 std::span<const double> terms, std::span<const double> scores);

}  // namespace morphokd::pipeline
