// Each subcommand registers its options on the app and returns the action to run.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace morphokd::cli {

using Action = std::function<void()>;

// The command line as typed (main sets it), for audit records.
const std::string& command_line();
// --precision into `precision`, limited to the names of morphokd::kPrecisions.
void add_precision_option(CLI::App* cmd, std::string& precision, const std::string& description);

Action add_forward_command(CLI::App& app);
Action add_train_command(CLI::App& app);
Action add_eval_command(CLI::App& app);
Action add_score_command(CLI::App& app);
Action add_info_command(CLI::App& app);
Action add_pretrain_command(CLI::App& app);
Action add_attack_command(CLI::App& app);
Action add_localize_command(CLI::App& app);
Action add_bench_command(CLI::App& app);
Action add_verify_command(CLI::App& app);
Action add_experiment_command(CLI::App& app);
Action add_report_command(CLI::App& app);

}  // namespace morphokd::cli
