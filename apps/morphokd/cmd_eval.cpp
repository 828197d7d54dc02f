// `morphokd eval` and `morphokd score`.
#include <iostream>

#include "commands.hpp"
#include "morphokd/parallel.hpp"
#include "morphokd/pipeline/evaluate.hpp"

namespace morphokd::cli {

Action add_eval_command(CLI::App& app) {
  auto o = std::make_shared<pipeline::EvalOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a run, or an ensemble of runs, on a labelled split; threshold fitted on valid");
  cmd->add_option("--run", o->run_dirs, "Run directory; several (--run A --run B) for an ensemble")->required();
  cmd->add_option("--out", o->out, "Folder for eval_SPLIT.json and scores_SPLIT.csv (default: the run; required for an ensemble)");
  cmd->add_option("--score", o->score, "Score rule instead of the run's: sum or layer-z (calibrated on valid)");
  cmd->add_option("--tta", o->tta, "Test-time flips instead of the run's: none or flip");
  cmd->add_option("--score-critical", o->score_critical, "Pools of the score instead of the run's, e.g. 2,3,4,5");
  cmd->add_option("--split", o->split, "valid or test")->capture_default_str();
  cmd->add_option("--data", o->data_dir, "MHSMA folder (default: the run's)");
  cmd->add_option("--threshold-rule", o->rule, "f1, youden or normal-pXX")->capture_default_str();
  cmd->add_option("--bootstrap", o->bootstrap, "Bootstrap resamples for the AUC CI")->capture_default_str();
  cmd->add_option("--robustness", o->robustness,
                  "FGSM epsilons, e.g. 0,0.002,0.005,0.01,0.02: AUC with every cell attacked against its label");
  cmd->add_option("--audit", o->audit, "Write one JSON line per cell: hashes, terms, score, threshold, call");
  return [o] {
    o->command = command_line();
    std::cout << pipeline::evaluate(*o);
  };
}

Action add_score_command(CLI::App& app) {
  auto o = std::make_shared<pipeline::ScoreOptions>();
  CLI::App* cmd = app.add_subcommand("score", "Score new cells with a run");
  cmd->add_option("--run", o->run_dir, "Run directory")->required();
  cmd->add_option("--input", o->input, "Cells .npy (N x 64 x 64, uint8 or float 0-1) or a folder of images")->required();
  cmd->add_option("--out", o->out, "CSV to write: index,name,score,call")->required();
  cmd->add_option("--threshold-rule", o->rule, "f1, youden or normal-pXX")->capture_default_str();
  cmd->add_option("--audit", o->audit, "Write one JSON line per cell: hashes, terms, score, threshold, call");
  return [o] {
    o->command = command_line();
    const long abnormal = pipeline::score_cells(*o);
    if (world().rank() == 0) std::cout << "wrote " << o->out << ": " << abnormal << " cells called abnormal\n";
  };
}

}  // namespace morphokd::cli
