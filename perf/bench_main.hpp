// Shared by the Google Benchmark programs: flags --threads=N (default: all cores) and
// --batch=N (64) before Google Benchmark's own, one workload registered per backend (the
// reference backend runs once: it is slow), and the counters perf/compare_torch.sh reads.
#pragma once
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "morphokd/runtime.hpp"

namespace morphokd::perf {

inline int g_batch = 64;

// img_per_s (and gflops when the workload's cost per image is known), threads, batch.
inline void report(benchmark::State& state, double gflop_per_image = 0) {
  const double images = static_cast<double>(state.iterations() * g_batch);
  state.SetItemsProcessed(state.iterations() * g_batch);
  state.counters["img_per_s"] = benchmark::Counter(images, benchmark::Counter::kIsRate);
  if (gflop_per_image > 0) state.counters["gflops"] = benchmark::Counter(images * gflop_per_image, benchmark::Counter::kIsRate);
  state.counters["threads"] = num_threads();
  state.counters["batch"] = g_batch;
}

inline int bench_main(int argc, char** argv, const std::string& name, void (*workload)(benchmark::State&, Backend)) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) set_num_threads(std::stoi(argv[i] + 10));
    else if (std::strncmp(argv[i], "--batch=", 8) == 0) g_batch = std::stoi(argv[i] + 8);
    else rest.push_back(argv[i]);
  }
  benchmark::RegisterBenchmark((name + "/onednn").c_str(), workload, Backend::onednn)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark((name + "/reference").c_str(), workload, Backend::reference)
      ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace morphokd::perf
