// `morphokd eval` and `morphokd score`.
#include <iostream>

#include "commands.hpp"
#include "morphokd/pipeline/evaluate.hpp"

namespace morphokd::cli {

Action add_eval_command(CLI::App& app) {
  auto o = std::make_shared<pipeline::EvalOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a run on a labelled split; threshold fitted on valid");
  cmd->add_option("--run", o->run_dir, "Run directory")->required();
  cmd->add_option("--split", o->split, "valid or test")->capture_default_str();
  cmd->add_option("--data", o->data_dir, "MHSMA folder (default: the run's)");
  cmd->add_option("--threshold-rule", o->rule, "f1, youden or normal-pXX")->capture_default_str();
  cmd->add_option("--bootstrap", o->bootstrap, "Bootstrap resamples for the AUC CI")->capture_default_str();
  return [o] { std::cout << pipeline::evaluate(*o); };
}

Action add_score_command(CLI::App& app) {
  auto o = std::make_shared<pipeline::ScoreOptions>();
  CLI::App* cmd = app.add_subcommand("score", "Score new cells with a run");
  cmd->add_option("--run", o->run_dir, "Run directory")->required();
  cmd->add_option("--input", o->input, "Cells .npy (N x 64 x 64, uint8 or float 0-1) or a folder of images")->required();
  cmd->add_option("--out", o->out, "CSV to write: index,name,score,call")->required();
  cmd->add_option("--threshold-rule", o->rule, "f1, youden or normal-pXX")->capture_default_str();
  return [o] {
    const long abnormal = pipeline::score_cells(*o);
    std::cout << "wrote " << o->out << ": " << abnormal << " cells called abnormal\n";
  };
}

}  // namespace morphokd::cli
