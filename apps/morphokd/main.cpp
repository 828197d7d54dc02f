// morphokd: every failure ends as one line on stderr and a non-zero exit.
#include <CLI/CLI.hpp>
#include <iostream>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "morphokd/error.hpp"
#include "morphokd/runtime.hpp"

namespace {
std::string g_command_line;
}  // namespace

const std::string& morphokd::cli::command_line() { return g_command_line; }

int main(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) g_command_line += (i ? " " : "") + std::string(argv[i]);
  CLI::App app{"morphokd: abnormal sperm-cell detection by knowledge distillation (CPU)"};
  app.set_version_flag("--version", morphokd::build_info());
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  std::string backend;
  int threads = 0;
  app.add_option("--backend", backend, "Compute backend: onednn or reference (default: $MORPHOKD_BACKEND, else onednn)")
      ->check(CLI::IsMember({"onednn", "reference"}));
  app.add_option("--threads", threads, "Threads for OpenMP and oneDNN (default: all cores)")->check(CLI::PositiveNumber);
  std::string determinism = "on";
  app.add_option("--deterministic", determinism,
                 "on: results independent of the thread count (oneDNN's thread-dependent reductions run our "
                 "fixed-order kernels); off: oneDNN throughout, faster, reproducible at the same thread count only")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();

  namespace cli = morphokd::cli;
  const std::vector<std::pair<std::string, cli::Action>> commands{
      {"forward", cli::add_forward_command(app)}, {"train", cli::add_train_command(app)},
      {"eval", cli::add_eval_command(app)},       {"score", cli::add_score_command(app)},
      {"info", cli::add_info_command(app)},       {"pretrain-teacher", cli::add_pretrain_command(app)},
      {"attack", cli::add_attack_command(app)},   {"localize", cli::add_localize_command(app)},
      {"bench", cli::add_bench_command(app)},     {"verify", cli::add_verify_command(app)}};

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {  // one line, like every other error
    std::cerr << "morphokd: error: " << e.what() << '\n';
    return 1;
  }
  try {
    morphokd::current_backend();  // rejects a bad MORPHOKD_BACKEND before any work
    if (!backend.empty()) morphokd::set_backend(morphokd::parse_backend(backend));
    if (threads > 0) morphokd::set_num_threads(threads);
    morphokd::set_deterministic(determinism == "on");
    for (const auto& [name, action] : commands)
      if (app.got_subcommand(name)) action();
    return 0;
  } catch (const morphokd::Error& e) {
    std::cerr << "morphokd: error: " << e.what() << '\n';
  } catch (const std::bad_alloc&) {
    std::cerr << "morphokd: error: out of memory\n";
  } catch (const std::exception& e) {
    std::cerr << "morphokd: error: " << e.what() << '\n';
  }
  return 1;
}
