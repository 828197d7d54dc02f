// Google Benchmark over the workloads `morphokd bench` times (pipeline/bench.hpp), one
// batch per iteration, per backend (the reference backend runs once: it is slow).
// Flags before Google Benchmark's own: --threads=N (default: all cores), --batch=N (64).
// The side-by-side comparison with PyTorch is perf/compare.sh.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "morphokd/pipeline/bench.hpp"
#include "morphokd/runtime.hpp"

using namespace morphokd;

namespace {
Index g_batch = 64;

void workload(benchmark::State& state, const std::string& what, Backend backend) {
  BackendScope scope(backend);
  pipeline::BenchConfig c;
  c.what = what;
  c.batch = g_batch;
  pipeline::BenchWorkload w(c);
  w.step();  // warm-up: primitives and buffers are planned here, not timed
  for (auto _ : state) w.step();
  const double images = static_cast<double>(state.iterations() * g_batch);
  state.counters["img_per_s"] = benchmark::Counter(images, benchmark::Counter::kIsRate);
  state.counters["gflops"] = benchmark::Counter(images * w.gflop_per_image(), benchmark::Counter::kIsRate);
  state.counters["threads"] = num_threads();
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) set_num_threads(std::stoi(argv[i] + 10));
    else if (std::strncmp(argv[i], "--batch=", 8) == 0) g_batch = std::stoi(argv[i] + 8);
    else rest.push_back(argv[i]);
  }
  for (const char* what : {"teacher_fwd", "score", "train_step", "fgsm"}) {
    if (backend_available(Backend::onednn))
      benchmark::RegisterBenchmark((std::string(what) + "/onednn").c_str(), workload, what, Backend::onednn)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark((std::string(what) + "/reference").c_str(), workload, what, Backend::reference)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
