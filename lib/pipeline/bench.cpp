#include "morphokd/pipeline/bench.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "morphokd/error.hpp"
#include "morphokd/method/fgsm.hpp"
#include "morphokd/models/students.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/random.hpp"
#include "morphokd/runtime.hpp"
#include "morphokd/pipeline/train.hpp"
#include "core/cpu_features.hpp"
#include "run_json.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace morphokd::pipeline {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

rusage self_usage() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Convolution GFLOP per image of a forward pass (2 per multiply-add).
double conv_gflop(nn::Sequential& net, const Shape& in) {
  double flop = 0;
  for (std::size_t i = 0; i < net.size(); ++i)
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&net.at(i))) {
      const Shape y = net.output_shape(in, i);
      flop += 2.0 * 9.0 * static_cast<double>(conv->weight.value.dim(1)) * static_cast<double>(y.numel() / y[0]);
    }
  return flop / 1e9;
}

volatile double g_sink;  // keeps the FMA loop's result alive

#if defined(__x86_64__)
// 12 independent FMA chains: enough to hide the FMA latency on every x86 core. AVX-512
// where the CPU has it (oneDNN's kernels use it there; some cores have two 512-bit FMA
// units, others split 512 bits in two), else AVX2.
__attribute__((target("avx2,fma"))) double fma_chains_avx2(long iters) {
  __m256 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm256_set1_ps(static_cast<float>(k));
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = _mm256_fmadd_ps(acc[k], m, c);
  float out[8];
  __m256 sum = acc[0];
  for (int k = 1; k < 12; ++k) sum = _mm256_add_ps(sum, acc[k]);
  _mm256_storeu_ps(out, sum);
  return out[0];
}

__attribute__((target("avx512f"))) double fma_chains_avx512(long iters) {
  __m512 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm512_set1_ps(static_cast<float>(k));
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = _mm512_fmadd_ps(acc[k], m, c);
  __m512 sum = acc[0];
  float out[16];
  for (int k = 1; k < 12; ++k) sum = _mm512_add_ps(sum, acc[k]);
  _mm512_storeu_ps(out, sum);  // not _mm512_reduce_add_ps: GCC 12 warns inside it
  return out[0];
}
#endif

}  // namespace

struct BenchWorkload::State {
  std::unique_ptr<Detector> det;
  std::unique_ptr<nn::Adam> adam;
  Tensor raw, gray;  // the batch: raw [N,1,64,64] in [0,1] and transformed
  Tensor grad, adv;  // fgsm
  std::function<void()> step;
  double gflop_per_image = 0;
};

BenchWorkload::BenchWorkload(const BenchConfig& c) : s_(std::make_unique<State>()) {
  check(c.batch >= 1, "--batch must be at least 1");
  State& st = *s_;
  st.raw = Tensor::empty({c.batch, 1, 64, 64});
  for (Index i = 0; i < st.raw.numel(); ++i) st.raw.data()[i] = static_cast<float>(uniform01(7, static_cast<std::uint64_t>(i)));
  const data::InputTransform input = data::InputTransform::make("image", st.raw);
  st.gray = st.raw.clone();
  input.apply(st.gray);
  const TrainConfig defaults;
  const models::VggSpec& spec = models::student_spec(defaults.student);
  auto student = models::vgg_features(spec, 3);
  models::init_weights(*student, 0);
  st.det = std::make_unique<Detector>(models::open_teacher(defaults.teacher, 1), std::move(student), spec,
                                      method::DistillConfig{defaults.train_layers, defaults.score_layers, defaults.lambda}, input);
  Detector& d = *st.det;
  d.set_teacher_precision(parse_precision(c.precision));
  const double t = conv_gflop(*d.teacher().net, {1, 1, 64, 64}), s = conv_gflop(d.student(), {1, 3, 64, 64});
  const std::vector<int> layers = defaults.train_layers;
  if (c.what == "teacher_fwd") {
    st.step = [&d, &st, layers] { d.teacher_maps(st.gray, layers); };
    st.gflop_per_image = t;
  } else if (c.what == "score") {
    st.step = [&d, &st] { d.layer_terms(st.raw, false); };
    st.gflop_per_image = t + s;
  } else if (c.what == "fgsm") {
    st.adv = Tensor::empty(st.raw.shape());
    st.step = [&d, &st] {
      d.score_gradient(st.raw, st.grad);
      method::fgsm_step(st.raw, st.grad, 0.01f, method::FgsmDirection::raise, st.adv);
    };
    st.gflop_per_image = 2 * t + 2 * s;  // forward and data backward through both networks
  } else if (c.what == "train_step") {
    st.adam = make_student_adam(d.student(), defaults.lr);
    d.student().train();
    st.step = [&d, &st, layers] {
      d.distill_backward(st.gray, d.teacher_maps(st.gray, layers));
      st.adam->step();
    };
    st.gflop_per_image = t + 3 * s;  // student: forward, data and weight backward
  } else {
    fail("bench: unknown workload " + quote(c.what) + " (expected teacher_fwd, train_step, score or fgsm)");
  }
}
BenchWorkload::~BenchWorkload() = default;
void BenchWorkload::step() { s_->step(); }
double BenchWorkload::gflop_per_image() const { return s_->gflop_per_image; }

namespace {

// Real training epochs on head, as PyTorch's epochs (perf/compare_torch.py): no augmentation,
// back to back without validation between them. train_log's per-epoch throughput, the first
// epoch (primitive creation) left out.
BenchResult bench_epoch(const BenchConfig& c) {
  char pattern[] = "/tmp/morphokd-bench-XXXXXX";
  check(::mkdtemp(pattern) != nullptr, "bench: cannot create a temporary directory in /tmp");
  const std::string dir = pattern;
  TrainConfig t;
  t.data_dir = c.data_dir;
  t.epochs = c.iters + 1;
  t.batch = c.batch;
  t.augment = "none";
  t.valid_every = 0;
  BenchResult r;
  std::ostringstream quiet;  // train's report lines; the bench prints its own
  std::streambuf* saved = std::cout.rdbuf(quiet.rdbuf());
  try {
    train(t, dir + "/run", false);
  } catch (...) {
    std::cout.rdbuf(saved);
    fs::remove_all(dir);
    throw;
  }
  std::cout.rdbuf(saved);
  const nlohmann::json run = read_json(dir + "/run/run.json");
  std::vector<double> rates;
  std::ifstream log(dir + "/run/train_log.jsonl");
  for (std::string line; std::getline(log, line);)
    if (nlohmann::json j = nlohmann::json::parse(line); j.at("epoch").get<int>() > 1) rates.push_back(j.at("img_per_s").get<double>());
  fs::remove_all(dir);
  r.img_per_s = median(rates);
  r.cache_seconds = run.at("teacher_cache").at("seconds").get<double>();
  const models::VggSpec& spec = models::student_spec(t.student);
  auto student = models::vgg_features(spec, 3);
  r.gflop_per_image = 3 * conv_gflop(*student, {1, 3, 64, 64});
  return r;
}

}  // namespace

double measure_fma_peak_gflops() {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("fma") || !__builtin_cpu_supports("avx2")) return 0;
  const bool avx512 = detail::cpu_has_avx512();
  const long iters = avx512 ? 10'000'000 : 20'000'000;
  double sink = 0;
  const auto start = Clock::now();
#pragma omp parallel reduction(+ : sink)
  sink += avx512 ? fma_chains_avx512(iters) : fma_chains_avx2(iters);
  const double s = seconds_since(start);
  g_sink = sink;
  return static_cast<double>(num_threads()) * static_cast<double>(iters) * 12 * (avx512 ? 16 : 8) * 2 / s / 1e9;
#else
  return 0;
#endif
}

BenchResult run_bench(const BenchConfig& c) {
  check(c.iters >= 1, "--iters must be at least 1");
  // What a precision changes: the teacher's forward passes, and Winograd's also FGSM's teacher.
  const Precision p = parse_precision(c.precision);
  if (p == Precision::bf16)
    check(c.what == "teacher_fwd" || c.what == "score" || c.what == "train_step",
          "--precision bf16 applies to teacher_fwd, score and train_step (the teacher's forward passes), not " + quote(c.what));
  if (p == Precision::fp32_winograd)
    check(c.what != "epoch", "--precision fp32-winograd applies to teacher_fwd, score, train_step and fgsm, not 'epoch'");
  // Before any work, and for fgsm too, whose teacher has no chain to refuse it.
  if (current_backend() == Backend::onednn) check_precision_hardware(p);
  BenchResult r;
  if (c.what == "epoch") {
    r = bench_epoch(c);
  } else {
    BenchWorkload w(c);
    w.step();  // warm-up: primitives and buffers are planned here
    std::vector<double> rates;
    const long faults_before = self_usage().ru_minflt;
    for (int i = 0; i < c.iters; ++i) {
      const auto start = Clock::now();
      w.step();
      rates.push_back(static_cast<double>(c.batch) / seconds_since(start));
    }
    // What allocating per step costs where page faults are dear (perf/compare.sh, README).
    r.minor_faults_per_step = static_cast<double>(self_usage().ru_minflt - faults_before) / c.iters;
    r.img_per_s = median(rates);
    r.gflop_per_image = w.gflop_per_image();
  }
  r.what = c.what;
  r.gflops = r.img_per_s * r.gflop_per_image;
  r.peak_gflops = measure_fma_peak_gflops();
  r.peak_fraction = r.peak_gflops > 0 ? r.gflops / r.peak_gflops : 0;
  r.peak_rss_mb = static_cast<double>(self_usage().ru_maxrss) / 1024.0;  // KiB on Linux
  r.threads = num_threads();
  r.deterministic = deterministic();
  r.isa = cpu_isa();
  r.backend = std::string(backend_name(current_backend()));
  r.precision = c.precision;
  r.batch = c.batch;
  r.iters = c.iters;
  return r;
}

}  // namespace morphokd::pipeline
