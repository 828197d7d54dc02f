// Throughput of the pipeline's workloads on this machine (`morphokd bench`, perf/), for
// the side-by-side comparison with PyTorch and for users sizing hardware. Batches are
// synthetic 64x64 cells (fixed seed); the epoch is a real training epoch on MHSMA.
#pragma once
#include <memory>
#include <string>

#include "morphokd/tensor.hpp"

namespace morphokd::pipeline {

// teacher_fwd  teacher forward, critical pools 2-5
// score        teacher + student B forward, per-cell anomaly score (no test-time flips)
// train_step   teacher forward (recomputed) + student B forward/backward + Adam
// fgsm         score gradient through student and teacher + signed step (eps 0.01)
// epoch        one training epoch of student B on head's normal cells, teacher targets cached
struct BenchConfig {
  std::string what = "teacher_fwd";
  Index batch = 64;
  int iters = 10;   // timed steps (epoch: epochs) after one warm-up step
  std::string precision = "fp32";
  std::string data_dir = "data/mhsma";  // epoch only
};

struct BenchResult {
  std::string what;
  double img_per_s = 0;       // median over the timed steps
  double gflop_per_image = 0; // convolution multiply-adds x 2 of the workload
  double gflops = 0;          // img_per_s x gflop_per_image
  double peak_gflops = 0;     // measured fp32 FMA peak of this machine, same threads
  double peak_fraction = 0;
  double cache_seconds = 0;   // epoch: building the teacher-target cache (once per run)
  double peak_rss_mb = 0;     // of this process
  double minor_faults_per_step = -1;  // page faults in the timed steps / steps; -1: not measured (epoch)
  int threads = 0;
  bool deterministic = true;  // the mode it ran in (runtime.hpp)
  std::string isa, backend, precision;
  Index batch = 0;
  int iters = 0;
};

BenchResult run_bench(const BenchConfig& config);

// One batch workload (not epoch), built once: step() runs one batch (perf/ Google Benchmark).
class BenchWorkload {
 public:
  explicit BenchWorkload(const BenchConfig& config);
  ~BenchWorkload();
  void step();
  double gflop_per_image() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// fp32 FMA throughput of this machine with the current thread count (a register-only
// FMA loop, AVX-512 where the CPU has it, else AVX2), GFLOP/s; 0 where the CPU has no FMA.
double measure_fma_peak_gflops();

}  // namespace morphokd::pipeline
