// FGSM at batch 64: the score's input gradient through student B and the VGG16 teacher
// (default pipeline: per-cell standardisation, pools 2-5, sum rule, no test-time flips)
// plus the signed step. The PyTorch side is perf/fgsm_torch.py; perf/compare_torch.sh fgsm.
// Flags: perf/bench_main.hpp.
#include "bench_main.hpp"
#include "morphokd/models/students.hpp"
#include "morphokd/models/teacher.hpp"
#include "morphokd/pipeline/adversarial.hpp"
#include "morphokd/random.hpp"
#include "morphokd/runtime.hpp"

using namespace morphokd;

namespace {

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
  Tensor x = Tensor::empty({perf::g_batch, 1, 64, 64});
  for (Index i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(uniform01(2, static_cast<std::uint64_t>(i)));
  pipeline::fgsm_cells(det, x, 0.01f, {method::FgsmDirection::raise});  // warm-up: primitives and buffers
  for (auto _ : state) benchmark::DoNotOptimize(pipeline::fgsm_cells(det, x, 0.01f, {method::FgsmDirection::raise}).data());
  perf::report(state);
}
}  // namespace

int main(int argc, char** argv) { return perf::bench_main(argc, argv, "fgsm", fgsm); }
