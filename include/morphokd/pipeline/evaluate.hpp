// Evaluation of a run on a labelled split, and scoring of new cells.
// Thresholds are fitted on the validation split only, never on the split being evaluated.
#pragma once
#include <string>

namespace morphokd::pipeline {

struct EvalOptions {
  std::string run_dir;
  std::string split = "test";
  std::string data_dir;  // empty: the run's
  std::string rule = "f1";
  int bootstrap = 1000;
};

// Writes RUN/eval_{split}.json and RUN/scores_{split}.csv (index,label,score; index = row
// in the split) and returns a printable summary table.
std::string evaluate(const EvalOptions& o);

struct ScoreOptions {
  std::string run_dir, input, out;  // input: cells .npy or a folder of images
  std::string rule = "f1";
};

// Writes `out` as CSV: index,name,score,call (call: abnormal when score > threshold).
// Returns the number of cells called abnormal.
long score_cells(const ScoreOptions& o);

}  // namespace morphokd::pipeline
