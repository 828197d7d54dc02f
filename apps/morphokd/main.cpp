// morphokd: every failure ends as one line on stderr and a non-zero exit.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "morphokd/error.hpp"
#include "morphokd/parallel.hpp"
#include "morphokd/runtime.hpp"
#if MORPHOKD_HAS_MPI
#include "morphokd/distributed/mpi_world.hpp"
#endif

namespace {
std::string g_command_line;
}  // namespace

const std::string& morphokd::cli::command_line() { return g_command_line; }

void morphokd::cli::add_precision_option(CLI::App* cmd, std::string& precision, const std::string& description) {
  std::vector<std::string> names;
  for (Precision p : kPrecisions) names.emplace_back(precision_name(p));
  cmd->add_option("--precision", precision, description)->check(CLI::IsMember(names))->capture_default_str();
}

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
  std::string distributed = "none";
  app.add_option("--distributed", distributed,
                 "mpi: train or score as one of the processes of `mpirun -np N morphokd ...` (data parallel, "
                 "same bits as one process); none: this process alone")
      ->check(CLI::IsMember({"none", "mpi"}))
      ->capture_default_str();

  namespace cli = morphokd::cli;
  const std::vector<std::pair<std::string, cli::Action>> commands{
      {"forward", cli::add_forward_command(app)}, {"train", cli::add_train_command(app)},
      {"eval", cli::add_eval_command(app)},       {"score", cli::add_score_command(app)},
      {"info", cli::add_info_command(app)},       {"pretrain-teacher", cli::add_pretrain_command(app)},
      {"attack", cli::add_attack_command(app)},   {"localize", cli::add_localize_command(app)},
      {"bench", cli::add_bench_command(app)},     {"verify", cli::add_verify_command(app)},
      {"experiment", cli::add_experiment_command(app)}, {"report", cli::add_report_command(app)}};

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
#if MORPHOKD_HAS_MPI
  std::unique_ptr<morphokd::MpiWorld> mpi;
#endif
  // Under mpirun an error ends every process (one line from each that failed), never a hang.
  const auto fail_exit = [&](const std::string& message) {
    const morphokd::Communicator& w = morphokd::world();
    std::cerr << "morphokd: error: " << (w.size() > 1 ? "rank " + std::to_string(w.rank()) + ": " : "") << message << '\n';
#if MORPHOKD_HAS_MPI
    if (mpi && mpi->size() > 1) mpi->abort(1);
#endif
    return 1;
  };
  try {
    if (distributed == "mpi") {
#if MORPHOKD_HAS_MPI
      mpi = std::make_unique<morphokd::MpiWorld>(argc, argv);
      morphokd::set_world(mpi.get());
      if (mpi->size() > 1 && !app.got_subcommand("train") && !app.got_subcommand("score"))
        morphokd::fail("--distributed mpi: only train and score run across processes");
#else
      morphokd::fail("--distributed mpi: this morphokd was built without MPI (MORPHOKD_WITH_MPI)");
#endif
    }
    morphokd::current_backend();  // rejects a bad MORPHOKD_BACKEND before any work
    if (!backend.empty()) morphokd::set_backend(morphokd::parse_backend(backend));
    if (threads > 0) morphokd::set_num_threads(threads);
    morphokd::set_deterministic(determinism == "on");
    for (const auto& [name, action] : commands)
      if (app.got_subcommand(name)) action();
    return 0;
  } catch (const morphokd::Error& e) {
    return fail_exit(e.what());
  } catch (const std::bad_alloc&) {
    return fail_exit("out of memory");
  } catch (const std::exception& e) {
    return fail_exit(e.what());
  }
}
