// Input gradients, FGSM and localization maps: the score gradient through input transform,
// student and teacher against PyTorch (tests/golden/make_input_grad_fixture.py; cells chosen
// where float32 rounding flips no ReLU or max-pool decision that matters) on both backends, FGSM's arithmetic, the guided-backprop ReLU rule, SmoothGrad's reproducibility,
// the input transform's backward by finite differences, map post-processing.
#define BOOST_TEST_MODULE adversarial
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "support.hpp"
#include "morphokd/data/transform.hpp"
#include "morphokd/method/fgsm.hpp"
#include "morphokd/method/localize.hpp"
#include "morphokd/models/students.hpp"
#include "morphokd/models/teacher.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/pipeline/adversarial.hpp"
#include "morphokd/random.hpp"

using namespace morphokd;
using test::fixture;
namespace bdata = boost::unit_test::data;

namespace {

constexpr double kGradTol = 1e-4;  // the bound, per cell: max |error| / max |golden|
// A cell where float32 rounding flipped a ReLU or max-pool decision. On an AMD EPYC, teacher
// pool 2 of cell 2 holds two values 1e-6 apart (relative) whose order oneDNN's and the
// reference's sums disagree on; the argmax moves and the cell's gradient with it, by 5.9e-2.
constexpr double kFlipTol = 1e-1;

// The fixture's detector: teacher random:0, student B after the replay's 2 steps, sum score
// over `pools`, no test-time flips.
pipeline::Detector golden_detector(const std::string& input, std::vector<int> pools, int teacher_channels = 1) {
  auto student = models::vgg_features(models::student_spec("B"), 3);
  const std::string path = std::string(MORPHOKD_GOLDEN_DIR) + "/replay_head_B.safetensors";
  student->load_state_dict(read_safetensors(path), path);
  return pipeline::Detector(models::open_teacher("random:0", teacher_channels), std::move(student), models::student_spec("B"),
                            method::DistillConfig{{2, 3, 4, 5}, std::move(pools), 0.01f}, data::InputTransform::parse(input),
                            method::ScoreRule::parse("sum", "none"));
}

// Share of pixels whose gradient sign matches the golden one, among those with
// |golden| > 1e-3 max|golden| (below that, float32 rounding decides the sign).
double sign_agreement(const Tensor& got, const Tensor& want) {
  float peak = 0;
  for (float v : want.span()) peak = std::max(peak, std::abs(v));
  long n = 0, same = 0;
  for (Index i = 0; i < want.numel(); ++i)
    if (std::abs(want.data()[i]) > 1e-3f * peak) {
      ++n;
      same += (got.data()[i] > 0) == (want.data()[i] > 0);
    }
  return static_cast<double>(same) / static_cast<double>(n);
}

// Per cell: max |got - want| / max |want| within the cell. Float32 rounding flips a ReLU or
// max-pool decision near a tie in about one cell in eight (PyTorch's own float32 gradient is
// 1.7e-2 off its float64 one on MHSMA's first 8 test cells), and a flip moves the whole
// cell's gradient by 1e-3..1e-1. The fixture's cells are ties-free for PyTorch's float32, not
// for every order of the sums: in grad_none (pools 3-5) the reference backend flips 2 of the 8
// on a Zen 5, oneDNN 3 once VGG's wide 16x16 and 8x8 layers ran on brgconv (1 on the jit
// kernel). So: at least 5 of the 8 cells within kGradTol, every cell within kFlipTol, and the
// gradient signs agree.
void check_cells(const Tensor& got, const Tensor& want, const std::string& name) {
  BOOST_REQUIRE(got.shape() == want.shape());
  int close = 0;
  double worst = 0;
  std::string all;
  for (Index i = 0; i < want.dim(0); ++i) {
    const double r = test::rel_error(got.slice(i, i + 1), want.slice(i, i + 1));
    close += r <= kGradTol;
    worst = std::max(worst, r);
    all += " " + std::to_string(r);
  }
  BOOST_TEST(close >= want.dim(0) - 3, name << ": " << close << " cells within " << kGradTol << "; per cell" << all);
  BOOST_TEST(worst <= kFlipTol, name << ": a cell " << worst << " off; per cell" << all);
  BOOST_TEST(sign_agreement(got, want) >= 0.999, name << ": gradient signs differ");
}

#define CHECK_CELLS(got, file, name) check_cells((got), (file).tensor((name), "fixture"), (name))

void check_scores(const std::vector<double>& got, const Tensor& want) {
  BOOST_REQUIRE(static_cast<Index>(got.size()) == want.numel());
  for (std::size_t i = 0; i < got.size(); ++i) BOOST_TEST(got[i] == want.data()[i], boost::test_tools::tolerance(1e-5));
}

}  // namespace

BOOST_DATA_TEST_CASE(score_gradient_matches_pytorch, bdata::make(test::available_backends()), backend) {
  BackendScope scope(backend);
  const auto f = fixture("input_grad_B");
  const Tensor& x = f.tensor("x", "");
  Tensor g;
  {
    auto det = golden_detector("image", {2, 3, 4, 5});
    check_scores(det.score_gradient(x, g), f.tensor("scores_image", ""));
    CHECK_CELLS(g, f, "grad_image");
    // The localization raw map is |gradient| of the gray cell.
    Tensor maps, want;
    method::saliency(g, maps);
    method::saliency(f.tensor("grad_image", ""), want);
    check_cells(maps, want, "|grad_image|");

    det.set_guided(true);
    Tensor gbp;
    det.score_gradient(x, gbp);
    CHECK_CELLS(gbp, f, "grad_image_gbp");
    BOOST_TEST(test::checked_rel_error(gbp, g) > 0.1);  // the rule changes the map
  }
  {
    auto det = golden_detector("none", {3, 4, 5});
    check_scores(det.score_gradient(x, g), f.tensor("scores_none", ""));
    CHECK_CELLS(g, f, "grad_none");
  }
  {  // MKD's per-channel gradients need the 3-channel teacher; their sum is the gray gradient
    auto det = golden_detector("image", {2, 3, 4, 5}, 3);
    Tensor per;
    det.score_gradient(x, per, true);
    CHECK_CELLS(per, f, "grad_image_channels");
    Tensor sum = Tensor::zeros(x.shape());
    for (Index i = 0; i < x.dim(0); ++i)
      for (Index c = 0; c < 3; ++c)
        for (Index j = 0; j < 64 * 64; ++j) sum.data()[i * 4096 + j] += per.data()[(i * 3 + c) * 4096 + j];
    CHECK_CELLS(sum, f, "grad_image");
    test::expect_error([&] { golden_detector("image", {2, 3, 4, 5}).score_gradient(x, per, true); }, "3-channel teacher");
  }
}

BOOST_AUTO_TEST_CASE(fgsm_step_is_clipped_signed_step) {
  const auto f = fixture("input_grad_B");
  const Tensor& x = f.tensor("x", "");
  const Tensor& g = f.tensor("grad_image", "");
  for (const float eps : {0.0f, 0.002f, 0.01f, 0.5f})
    for (const auto dir : {method::FgsmDirection::raise, method::FgsmDirection::lower}) {
      Tensor adv = Tensor::empty(x.shape());
      method::fgsm_step(x, g, eps, dir, adv);
      const float s = dir == method::FgsmDirection::raise ? 1.0f : -1.0f;
      long bad = 0;
      for (Index i = 0; i < x.numel(); ++i) {
        const float sign = g.data()[i] > 0 ? 1.0f : g.data()[i] < 0 ? -1.0f : 0.0f;
        const float want = std::clamp(x.data()[i] + s * eps * sign, 0.0f, 1.0f);
        bad += adv.data()[i] != want || std::abs(adv.data()[i] - x.data()[i]) > eps + 1e-7f || adv.data()[i] < 0 || adv.data()[i] > 1;
      }
      BOOST_TEST(bad == 0, "eps " << eps << ": " << bad << " pixels off the formula");
    }
  for (double bad : {-0.001, 1.001, std::nan("")}) test::expect_error([&] { method::check_eps(bad, "--eps"); }, {"--eps", "[0, 1]"});
  test::expect_error([] { method::parse_direction("up"); }, {"--direction", "up"});
  test::expect_error([] { pipeline::parse_eps_list("0,abc"); }, {"--robustness", "abc"});
  test::expect_error([] { pipeline::parse_eps_list("0,2"); }, {"--robustness", "[0, 1]"});
}

// Raising the score by FGSM raises it, for the fixture's cells (the CLI measures it on MHSMA).
BOOST_AUTO_TEST_CASE(fgsm_raises_and_lowers_the_score) {
  const auto f = fixture("input_grad_B");
  const Tensor& x = f.tensor("x", "");
  auto det = golden_detector("image", {2, 3, 4, 5});
  const std::vector<double> before = det.score(x);
  std::vector<double> at_x;
  const auto up = det.score(pipeline::fgsm_cells(det, x, 0.005f, {method::FgsmDirection::raise}, nullptr, &at_x));
  BOOST_TEST(at_x == before, boost::test_tools::per_element());  // the gradient pass scores x as score() does
  const auto down = det.score(pipeline::fgsm_cells(det, x, 0.005f, {method::FgsmDirection::lower}));
  for (std::size_t i = 0; i < before.size(); ++i) {
    BOOST_TEST(up[i] > before[i]);
    BOOST_TEST(down[i] < before[i]);
  }
}

// Guided backprop changes only the ReLU backward rule: conv -> ReLU -> conv by hand.
BOOST_AUTO_TEST_CASE(guided_backprop_is_the_relu_rule_only) {
  nn::Sequential net("net");
  net.add(std::make_unique<nn::Conv2d>(2, 4, true));
  net.add(std::make_unique<nn::ReLU>());
  net.add(std::make_unique<nn::Conv2d>(4, 3, false));
  Index k = 0;
  for (auto& [name, p] : net.named_parameters())
    for (float& v : p->value.span()) v = static_cast<float>(uniform01(7, static_cast<std::uint64_t>(k++)) - 0.5);
  Tensor x = Tensor::empty({2, 2, 6, 6}), dy = Tensor::empty({2, 3, 6, 6});
  for (Index i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(uniform01(8, static_cast<std::uint64_t>(i)) - 0.5);
  for (Index i = 0; i < dy.numel(); ++i) dy.data()[i] = static_cast<float>(uniform01(9, static_cast<std::uint64_t>(i)) - 0.5);
  net.forward(x);
  const Tensor h = net.output(0).clone();
  auto& c1 = dynamic_cast<nn::Conv2d&>(net.at(0));
  auto& c2 = dynamic_cast<nn::Conv2d&>(net.at(2));
  for (const bool guided : {false, true}) {
    net.set_guided(guided);
    Tensor dx = Tensor::empty(x.shape());
    net.backward({{2, dy}}, false, &dx);
    Tensor dh = Tensor::empty(h.shape()), dr = Tensor::empty(h.shape()), want = Tensor::empty(x.shape());
    ops::conv2d_backward_data(dy, c2.weight.value, dh);
    ops::relu_backward(h, dh, dr);
    if (guided)
      for (float& v : dr.span()) v = std::max(v, 0.0f);
    ops::conv2d_backward_data(dr, c1.weight.value, want);
    BOOST_TEST(test::checked_rel_error(dx, want) == 0.0, (guided ? "guided" : "vanilla"));
  }
}

BOOST_AUTO_TEST_CASE(smoothgrad_is_reproducible_and_batch_independent) {
  const auto f = fixture("input_grad_B");
  const Tensor x = f.tensor("x", "").slice(0, 2).clone();
  auto det = golden_detector("image", {2, 3, 4, 5});
  const method::GradientFn grad = [&](const Tensor& c, Tensor& g) { det.score_gradient(c, g); };
  const std::vector<std::int64_t> ids{10, 11};
  Tensor a, b, c, single;
  method::smoothgrad(x, ids, 3, 0.05, 1, grad, a);
  method::smoothgrad(x, ids, 3, 0.05, 1, grad, b);
  method::smoothgrad(x, ids, 3, 0.05, 2, grad, c);
  BOOST_TEST(test::checked_rel_error(a, b) == 0.0);  // same seed: the same bits
  BOOST_TEST(test::checked_rel_error(a, c) > 1e-3);  // another seed: other noise
  method::smoothgrad(x.slice(1, 2).clone(), std::vector<std::int64_t>{11}, 3, 0.05, 1, grad, single);
  BOOST_TEST(test::checked_rel_error(single, a.slice(1, 2).clone()) == 0.0);  // a cell's map ignores its batch
  Tensor plain;
  det.score_gradient(x, plain);
  method::smoothgrad(x, ids, 2, 0.0, 1, grad, b);  // no noise: the plain gradient
  BOOST_TEST(test::checked_rel_error(b, plain) <= 1e-6);
  test::expect_error([&] { method::smoothgrad(x, ids, 0, 0.05, 1, grad, b); }, "--n");
  test::expect_error([&] { method::smoothgrad(x, ids, 2, -1.0, 1, grad, b); }, "--sigma-noise");
  // Noise values: standard normal by their first two moments.
  double s = 0, q = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double v = method::normal01(3, static_cast<std::uint64_t>(i));
    s += v;
    q += v * v;
  }
  BOOST_TEST(std::abs(s / n) < 0.01);
  BOOST_TEST(std::abs(q / n - 1.0) < 0.01);
}

// backward() is the vector-Jacobian product of apply(): central differences of <g, apply(x)>.
BOOST_DATA_TEST_CASE(input_transform_backward_by_finite_differences, bdata::make({"none", "dataset", "image"}), kind) {
  Tensor x = Tensor::empty({2, 1, 8, 8}), g = Tensor::empty({2, 1, 8, 8});
  for (Index i = 0; i < x.numel(); ++i) {
    x.data()[i] = static_cast<float>(0.3 + 0.4 * uniform01(4, static_cast<std::uint64_t>(i)));
    g.data()[i] = static_cast<float>(uniform01(5, static_cast<std::uint64_t>(i)) - 0.5);
  }
  const data::InputTransform t = data::InputTransform::make(kind, x);
  Tensor vjp = g.clone();
  t.backward(x, vjp);
  auto objective = [&](const Tensor& cells) {
    Tensor z = cells.clone();
    t.apply(z);
    double s = 0;
    for (Index i = 0; i < z.numel(); ++i) s += static_cast<double>(g.data()[i]) * z.data()[i];
    return s;
  };
  double worst = 0, peak = 0;
  for (Index i = 0; i < x.numel(); i += 5) {
    const float h = 1e-3f;
    Tensor up = x.clone(), down = x.clone();
    up.data()[i] += h;
    down.data()[i] -= h;
    const double fd = (objective(up) - objective(down)) / static_cast<double>(up.data()[i] - down.data()[i]);
    worst = std::max(worst, std::abs(fd - vjp.data()[i]));
    peak = std::max(peak, std::abs(fd));
  }
  BOOST_TEST(worst / peak <= 2e-3, kind << ": finite differences differ by " << worst / peak);
}

BOOST_AUTO_TEST_CASE(map_postprocessing) {
  // 99th percentile by linear interpolation, as numpy: values 0..99 -> 98.01.
  std::vector<float> map(100), out(100);
  for (int i = 0; i < 100; ++i) map[static_cast<std::size_t>(i)] = static_cast<float>(i);
  method::postprocess_map(map.data(), 10, 10, 99.0, 0.0, out.data());
  BOOST_TEST(out[50] == 50.0f / 98.01f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(out[99] == 1.0f);
  // The blur keeps a constant map constant and spreads a point symmetrically.
  std::vector<float> flat(64, 3.0f), point(81, 0.0f), blurred(81);
  method::postprocess_map(flat.data(), 8, 8, 99.0, 2.0, out.data());
  for (int i = 0; i < 64; ++i) BOOST_TEST(out[static_cast<std::size_t>(i)] == 1.0f, boost::test_tools::tolerance(1e-6f));
  point[40] = 1.0f;
  method::postprocess_map(point.data(), 9, 9, 100.0, 1.0, blurred.data());
  BOOST_TEST(blurred[39] == blurred[41]);
  BOOST_TEST(blurred[31] == blurred[49]);
  BOOST_TEST(blurred[40] > blurred[39]);
  std::vector<float> zeros(16, 0.0f);
  method::postprocess_map(zeros.data(), 4, 4, 99.0, 1.0, out.data());
  BOOST_TEST(out[0] == 0.0f);
  test::expect_error([&] { method::postprocess_map(zeros.data(), 4, 4, 99.0, -1.0, out.data()); }, "--blur-sigma");
  test::expect_error([] { method::parse_map_method("occlusion"); }, {"--method", "occlusion"});
}
