// `morphokd bench --what W`: throughput of one pipeline workload on this machine, as text or
// one JSON line (perf/compare.sh puts it beside PyTorch's).
#include <nlohmann/json.hpp>
#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "morphokd/pipeline/bench.hpp"

namespace morphokd::cli {

Action add_bench_command(CLI::App& app) {
  auto c = std::make_shared<pipeline::BenchConfig>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("bench", "Measure a workload's throughput (images/s) on this machine");
  cmd->add_option("--what", c->what, "teacher_fwd, train_step, score, fgsm or epoch")
      ->check(CLI::IsMember({"teacher_fwd", "train_step", "score", "fgsm", "epoch"}))
      ->capture_default_str();
  cmd->add_option("--batch", c->batch, "Cells per batch")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--iters", c->iters, "Timed steps after one warm-up (epoch: epochs after the first)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  add_precision_option(cmd, c->precision, "Teacher arithmetic: fp32, fp32-winograd (AVX-512; also FGSM's gradient) or bf16 (AVX512-BF16/AMX)");
  cmd->add_option("--data", c->data_dir, "MHSMA directory (epoch)")->capture_default_str();
  cmd->add_flag("--json", *as_json, "Print one JSON line");
  return [c, as_json] {
    const pipeline::BenchResult r = pipeline::run_bench(*c);
    if (*as_json) {
      nlohmann::json j = {{"what", r.what},         {"img_per_s", r.img_per_s},     {"gflops", r.gflops},
                          {"peak_fraction", r.peak_fraction}, {"peak_gflops", r.peak_gflops},
                          {"gflop_per_image", r.gflop_per_image}, {"threads", r.threads}, {"isa", r.isa}, {"deterministic", r.deterministic},
                          {"backend", r.backend},   {"precision", r.precision},     {"batch", r.batch},
                          {"iters", r.iters},       {"peak_rss_mb", r.peak_rss_mb}, {"cache_seconds", r.cache_seconds}};
      j["minor_faults_per_step"] = r.minor_faults_per_step < 0 ? nlohmann::json() : nlohmann::json(r.minor_faults_per_step);
      std::cout << j.dump() << std::endl;
      return;
    }
    std::printf("%s: %.1f img/s, %.1f GFLOP/s (%.0f %% of the %.0f GFLOP/s FMA peak), %d threads, %s, %s%s, batch %lld, "
                "peak RSS %.0f MB\n",
                r.what.c_str(), r.img_per_s, r.gflops, 100 * r.peak_fraction, r.peak_gflops, r.threads, r.isa.c_str(),
                r.backend.c_str(), r.deterministic ? " (deterministic)" : "", static_cast<long long>(r.batch), r.peak_rss_mb);
    if (r.what == "epoch") std::printf("teacher-target cache built in %.1f s (once per run)\n", r.cache_seconds);
  };
}

}  // namespace morphokd::cli
