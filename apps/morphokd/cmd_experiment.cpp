// `morphokd experiment` and `morphokd report` (see pipeline/experiment.hpp, pipeline/report.hpp).
#include <iostream>

#include "commands.hpp"
#include "morphokd/pipeline/experiment.hpp"
#include "morphokd/pipeline/report.hpp"

namespace morphokd::cli {

Action add_experiment_command(CLI::App& app) {
  auto o = std::make_shared<pipeline::ExperimentOptions>();
  CLI::App* cmd = app.add_subcommand("experiment", "Train and evaluate a declared grid of runs (resumable: finished cells are skipped)");
  cmd->add_option("--config", o->config, "Experiment file, e.g. data/experiments/smoke.json")->required();
  cmd->add_option("--data", o->data_dir, "MHSMA folder for every cell (default: the config's, else data/mhsma)");
  cmd->add_option("--out", o->out, "Experiment folder (created, or continued when it exists)")->required();
  cmd->add_flag("--dry-run", o->dry_run, "List the cells (and which are finished) without running or writing anything");
  return [o] {
    o->command = command_line();
    pipeline::run_experiment(*o);
  };
}

Action add_report_command(CLI::App& app) {
  auto o = std::make_shared<pipeline::ReportOptions>();
  CLI::App* cmd = app.add_subcommand("report", "Write report.md with the paper's tables and figures from an experiment folder");
  cmd->add_option("dir", o->dir, "Experiment folder (morphokd experiment --out)")->required();
  cmd->add_option("--out", o->out, "Folder for report.md and its figures (default: DIR/report; replaced)");
  cmd->add_option("--readme", o->readme, "Also put the report into this Markdown file's marked results section");
  return [o] {
    o->command = command_line();
    const std::string path = pipeline::write_report(*o);
    std::cout << "wrote " << path << (o->readme.empty() ? "" : " and updated " + o->readme) << "\n";
  };
}

}  // namespace morphokd::cli
