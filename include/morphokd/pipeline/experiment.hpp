// Experiment sweeps for the paper's analyses (issue 9). EXP.json declares studies, each a
// grid over training options; every distinct configuration (a cell) is trained once,
// evaluated on the validation and test splits, and skipped when it is found finished.
//
//   {"format": "morphokd-experiment", "format_version": 1, "description": "...",
//    "train": {"epochs": 5, "tta": "none", ...},        // over train's defaults; run.json "config" keys
//    "eval": {"bootstrap": 1000, "threshold_rule": "f1"},
//    "studies": [{"name": "main", "analyses": ["table2", "roc"],
//                 "train": {"epochs": 3},                   // optional, over the experiment's "train"
//                 "grid": {"part": ["head", "tail"], "seed": [0, 1, 2]}}]}
//
// The key "critical" sets train_critical and score_critical together. A cell is named
// PART-STUDENT-sSEED-HASH, HASH from its whole configuration (data folder aside), so a
// configuration two studies share is trained once and an edited grid keeps its finished cells.
//
// OUT/experiment.json  the configuration as read, its SHA-256, the command, the cells
// OUT/runs/CELL/       a run directory (run.hpp) with eval_{valid,test}.json, scores_{valid,test}.csv,
//                      and cell.json, written last: the cell is finished
// OUT/runs/CELL.log    what training and evaluation printed
#pragma once
#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "morphokd/pipeline/run.hpp"

namespace morphokd::pipeline {

// The analyses a study can feed, by the paper's numbering.
const std::vector<std::string>& known_analyses();

struct Study {
  std::string name;
  std::vector<std::string> analyses;
  std::vector<std::string> axes;   // grid keys, sorted (the last varies fastest)
  std::vector<std::size_t> cells;  // indices into Experiment::cells, in grid order
};

struct Cell {
  std::string name;
  TrainConfig config;
  std::map<std::string, std::string> axes;  // grid key -> value as written, for every study the cell is in
  std::vector<std::string> studies;
};

struct Experiment {
  std::string description;
  std::vector<Study> studies;
  std::vector<Cell> cells;  // in grid order, each distinct configuration once
  int bootstrap = 1000;
  std::string threshold_rule = "f1";
  std::string sha256;  // of the configuration's bytes
};

// Checks EXP.json's bytes; every error names `path` (and the study). A non-empty
// `data_dir` replaces the data folder of every cell.
Experiment parse_experiment(std::span<const std::byte> bytes, const std::string& path, const std::string& data_dir);

// The cells of `study`, in grid order.
std::vector<const Cell*> study_cells(const Experiment& e, const std::string& study);

struct ExperimentOptions {
  std::string config, data_dir, out;
  std::string command;   // the call, recorded in OUT/experiment.json
  bool dry_run = false;  // list the cells (finished or not) and write nothing
};

// Trains and evaluates every unfinished cell, one part after another, with one progress bar
// for the whole grid; prints a line per cell. The teacher memo (detector.hpp, 2 GB) is on
// meanwhile: cells of a part share the teacher's maps of its cells (same bits as alone). A failing cell stops the sweep with an Error naming
// it; finished cells stay finished.
void run_experiment(const ExperimentOptions& o);

// The experiment recorded in OUT/experiment.json, as run_experiment last ran it.
Experiment read_experiment_record(const std::string& out);

}  // namespace morphokd::pipeline
