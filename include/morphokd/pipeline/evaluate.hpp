// Evaluation of a run on a labelled split, and scoring of new cells.
// Thresholds are fitted on the validation split only, never on the split being evaluated.
#pragma once
#include <string>
#include <vector>

namespace morphokd::pipeline {

struct EvalOptions {
  std::vector<std::string> run_dirs;  // one run, or the members of an ensemble (same part)
  std::string split = "test";
  std::string data_dir;  // empty: the first run's
  std::string rule = "f1";
  std::string score, tta;  // override the runs' score rule (empty: each run's own)
  std::string score_critical;  // override the pools the score sums over, e.g. "2,3,4,5"
  std::string out;         // output folder; empty: the run's own (one run only)
  int bootstrap = 1000;
  std::string robustness;  // "0,0.002,0.01": AUC with every cell attacked against its label (one run)
  std::string audit;       // JSON lines, one per cell (pipeline/audit.hpp; one run)
  std::string command;     // the call, for the audit record
};

// Writes OUT/eval_{split}.json and OUT/scores_{split}.csv (index,label,score; index = row
// in the split; for one run also term_poolK, each score layer's distance term) and returns a
// printable summary table. An ensemble's score is the mean of
// its members' scores, each standardised by its mean and std over normal validation cells.
// With `robustness` also the FGSM robustness curve: "robustness": [{eps, auc}] in the JSON
// and OUT/robustness_{split}.png.
std::string evaluate(const EvalOptions& o);

struct ScoreOptions {
  std::string run_dir, input, out;  // input: cells .npy or a folder of images
  std::string rule = "f1";
  std::string audit;    // JSON lines, one per cell (pipeline/audit.hpp)
  std::string command;  // the call, for the audit record
};

// Writes `out` as CSV: index,name,score,call (call: abnormal when score > threshold).
// Returns the number of cells called abnormal. Across MPI processes (parallel.hpp's world)
// each scores a share of the cells; rank 0 writes and returns the count, the others return 0.
long score_cells(const ScoreOptions& o);

}  // namespace morphokd::pipeline
