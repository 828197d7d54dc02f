// FGSM at batch 64: the score's input gradient through student B and the VGG16 teacher
// (default pipeline: per-cell standardisation, pools 2-5, sum rule, no test-time flips)
// plus the signed step. The PyTorch side is perf/fgsm_torch.py; perf/compare_torch.sh fgsm.
// Extra flags before Google Benchmark's own: --threads=N (default: all cores), --batch=N (64).
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "morphokd/models/students.hpp"
#include "morphokd/models/teacher.hpp"
#include "morphokd/pipeline/adversarial.hpp"
#include "morphokd/random.hpp"
#include "morphokd/runtime.hpp"

using namespace morphokd;

namespace {
int g_batch = 64;

void fgsm(benchmark::State& state, Backend backend) {
  if (!backend_available(backend)) {
    state.SkipWithError("backend not compiled in");
    return;
  }
  BackendScope scope(backend);
  const models::VggSpec& spec = models::student_spec("B");
  auto student = models::vgg_features(spec, 3);
  models::init_weights(*student, 1);
  pipeline::Detector det(models::open_teacher("random:0"), std::move(student), spec, method::DistillConfig{{2, 3, 4, 5}, {2, 3, 4, 5}, 0.01f},
                         data::InputTransform::parse("image"), method::ScoreRule::parse("sum", "none"));
  Tensor x = Tensor::empty({g_batch, 1, 64, 64});
  for (Index i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(uniform01(2, static_cast<std::uint64_t>(i)));
  pipeline::fgsm_cells(det, x, 0.01f, {method::FgsmDirection::raise});  // warm-up: primitives and buffers
  for (auto _ : state) benchmark::DoNotOptimize(pipeline::fgsm_cells(det, x, 0.01f, {method::FgsmDirection::raise}).data());
  state.SetItemsProcessed(state.iterations() * g_batch);
  state.counters["img_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * g_batch), benchmark::Counter::kIsRate);
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
  benchmark::RegisterBenchmark("fgsm/onednn", fgsm, Backend::onednn)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("fgsm/reference", fgsm, Backend::reference)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
