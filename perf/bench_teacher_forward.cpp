// VGG16 teacher forward (features 0..30) on a batch of 64x64 images, per backend.
// Flags: perf/bench_main.hpp.
#include "bench_main.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/random.hpp"
#include "morphokd/runtime.hpp"

using namespace morphokd;

namespace {
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
  Tensor x = Tensor::empty({perf::g_batch, 3, 64, 64});
  for (Index i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(uniform01(2, i));
  net->forward(x);  // warm-up: primitives are created here, not timed
  for (auto _ : state) benchmark::DoNotOptimize(net->forward(x).data());
  perf::report(state, kTeacherGflopPerImage);
}
}  // namespace

int main(int argc, char** argv) { return perf::bench_main(argc, argv, "teacher_fwd", teacher_forward); }
