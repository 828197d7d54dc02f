// `morphokd verify RUN`: every file the run's records name, re-hashed (pipeline/verify.hpp).
#include <cstdio>
#include <memory>
#include <string>

#include "commands.hpp"
#include "morphokd/error.hpp"
#include "morphokd/pipeline/verify.hpp"

namespace morphokd::cli {

Action add_verify_command(CLI::App& app) {
  auto run = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("verify", "Re-hash every file a run references and report any mismatch");
  cmd->add_option("RUN", *run, "Run directory")->required();
  return [run] {
    const pipeline::VerifyReport report = pipeline::verify_run(*run);
    const auto& checks = report.files;
    int bad = 0;
    for (const pipeline::FileCheck& c : checks) {
      if (c.problem.empty()) {
        std::printf("ok        %-15s %s  %s\n", c.role.c_str(), c.actual.c_str(), c.path.c_str());
      } else {
        ++bad;
        std::string line = c.problem;
        if (!c.expected.empty()) line += " (recorded " + c.expected + ", now " + (c.actual.empty() ? "unreadable" : c.actual) + ")";
        std::printf("MISMATCH  %-15s %s: %s\n", c.role.c_str(), c.path.c_str(), line.c_str());
      }
    }
    std::fflush(stdout);
    if (bad > 0) fail(*run + ": " + std::to_string(bad) + " of " + std::to_string(checks.size()) + " files fail verification");
    std::printf("%zu files verified%s\n", checks.size(),
                report.finished ? "" : " (training not finished: student, final checkpoint and log not recorded yet)");
  };
}

}  // namespace morphokd::cli
