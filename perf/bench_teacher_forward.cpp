// VGG16 teacher forward (features 0..30) on a batch of 64x64 images, per backend.
// Extra flags before Google Benchmark's own: --threads=N (default: all cores), --batch=N (64).
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/random.hpp"
#include "morphokd/runtime.hpp"

using namespace morphokd;

namespace {
int g_batch = 64;
constexpr double kTeacherGflopPerImage = 2.51;  // METHOD.md: 64x64 input, multiply-add = 2 FLOP

void teacher_forward(benchmark::State& state, Backend backend) {
  if (!backend_available(backend)) {
    state.SkipWithError("backend not compiled in");
    return;
  }
  BackendScope scope(backend);
  auto net = models::vgg16_features();
  net->eval();
  for (auto& [name, p] : net->named_parameters())
    for (Index i = 0; i < p->value.numel(); ++i) p->value.data()[i] = static_cast<float>(uniform01(1, i) - 0.5) * 0.05f;
  Tensor x = Tensor::empty({g_batch, 3, 64, 64});
  for (Index i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(uniform01(2, i));
  net->forward(x);  // warm-up: primitives are created here, not timed
  for (auto _ : state) benchmark::DoNotOptimize(net->forward(x).data());
  state.SetItemsProcessed(state.iterations() * g_batch);
  state.counters["img_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * g_batch), benchmark::Counter::kIsRate);
  state.counters["gflops"] = benchmark::Counter(static_cast<double>(state.iterations() * g_batch) * kTeacherGflopPerImage,
                                                benchmark::Counter::kIsRate);
  state.counters["threads"] = num_threads();
  state.counters["batch"] = g_batch;
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) set_num_threads(std::stoi(argv[i] + 10));
    else if (std::strncmp(argv[i], "--batch=", 8) == 0) g_batch = std::stoi(argv[i] + 8);
    else rest.push_back(argv[i]);
  }
  benchmark::RegisterBenchmark("teacher_fwd/onednn", teacher_forward, Backend::onednn)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("teacher_fwd/reference", teacher_forward, Backend::reference)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
