// Runs every registered op case through: (1) a finite-difference gradient check of the
// reference kernels in double precision, (2) oneDNN (fast and deterministic modes) vs
// reference in float, forward and backward, (3) bit-exact backend agreement on
// small-integer data where the op's arithmetic is exact. Also fails if any op in ops::Op
// has no case. And our one hand-vectorized op kernel against its portable twin, bit for bit.
#define BOOST_TEST_MODULE op_harness
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <set>

#include "morphokd/random.hpp"
#include "morphokd/runtime.hpp"
#include "op_cases.hpp"
#include "support.hpp"
#include "ops/reference/kernels.hpp"

using namespace morphokd;
using test::InputKind;
using test::OpCase;

namespace {

const std::vector<OpCase>& cases() {
  static const std::vector<OpCase> c = test::all_op_cases();
  return c;
}

// Deterministic inputs for case `seed`, input `which`.
std::vector<double> make_input(const Shape& s, InputKind kind, std::uint64_t seed, bool integers) {
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double u = uniform01(seed, i);
    if (integers) {
      v[i] = kind == InputKind::positive ? std::floor(1 + 3 * u) : std::floor(7 * u) - 3;  // exact small integers
    } else if (kind == InputKind::positive) {
      v[i] = 0.5 + u;
    } else if (kind == InputKind::no_kinks) {
      // distinct values on a grid of step 1/(2n) shuffled by a permutation: no ties, |x| >= 0.05
      const double r = (static_cast<double>((i * 7919 + seed) % v.size()) + 0.5) / static_cast<double>(v.size());
      v[i] = (r < 0.5 ? -1.0 : 1.0) * (0.05 + std::fabs(2 * r - 1));
    } else {
      v[i] = 2 * u - 1;
    }
  }
  return v;
}

Tensor to_tensor(const Shape& s, const std::vector<double>& v) {
  Tensor t = Tensor::empty(s);
  for (std::size_t i = 0; i < v.size(); ++i) t.data()[i] = static_cast<float>(v[i]);
  return t;
}

struct DoubleRun {
  std::vector<std::vector<double>> in, out, dout, din;
};

std::vector<const double*> cptrs(const std::vector<std::vector<double>>& b) {
  std::vector<const double*> p;
  for (auto& x : b) p.push_back(x.data());
  return p;
}
std::vector<double*> ptrs(std::vector<std::vector<double>>& b) {
  std::vector<double*> p;
  for (auto& x : b) p.push_back(x.data());
  return p;
}

double weighted_output(const OpCase& c, const std::vector<std::vector<double>>& in,
                       const std::vector<std::vector<double>>& r) {
  std::vector<std::vector<double>> out;
  for (const Shape& s : c.outputs) out.emplace_back(static_cast<std::size_t>(s.numel()));
  c.fwd_d(cptrs(in), ptrs(out));
  double l = 0;
  for (std::size_t k = 0; k < out.size(); ++k)
    for (std::size_t i = 0; i < out[k].size(); ++i) l += out[k][i] * r[k][i];
  return l;
}

std::string case_name(std::size_t i) { return cases()[i].label; }

// Float run of one backend: outputs followed by input gradients. oneDNN runs in both modes:
// fast (its primitives throughout) and deterministic (its fixed-order kernels, the reference
// ones for the rest).
std::vector<Tensor> float_run(const OpCase& c, Backend b, bool deterministic, const std::vector<Tensor>& in,
                              const std::vector<Tensor>& dout) {
  BackendScope scope(b);
  DeterministicScope mode(deterministic);
  std::vector<Tensor> out, din;
  for (const Shape& s : c.outputs) out.push_back(Tensor::full(s, NAN));
  for (const Shape& s : c.inputs) din.push_back(Tensor::full(s, NAN));  // overwrite convention: no stale values survive
  c.fwd_f(in, out);
  c.bwd_f(in, out, dout, din);
  std::vector<Tensor> all = out;
  for (std::size_t k = 0; k < din.size(); ++k)
    if (c.differentiable[k]) all.push_back(din[k]);
  return all;
}

// Largest |got - want|, relative to the largest |want|.
double rel_diff(const Tensor& want, const Tensor& got) {
  double worst = 0, scale = 1e-30;
  for (Index i = 0; i < want.numel(); ++i) {
    worst = std::max(worst, std::fabs(double(want.data()[i]) - got.data()[i]));
    scale = std::max(scale, std::fabs(double(want.data()[i])));
  }
  return worst / scale;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_op_has_a_harness_case) {
  std::set<ops::Op> covered;
  for (const OpCase& c : cases()) covered.insert(c.op);
  for (int i = 0; i < static_cast<int>(ops::Op::kCount); ++i)
    BOOST_TEST(covered.count(static_cast<ops::Op>(i)) == 1u, "op " << ops::op_name(static_cast<ops::Op>(i)) << " has no harness case");
}

// Central differences on L = sum_k <out_k, r_k> in double; step 1e-6 leaves truncation
// error ~1e-12 and rounding ~1e-10, so 1e-6 (relative to max(1, |g|)) is a real bound.
BOOST_DATA_TEST_CASE(gradient_matches_finite_differences, boost::unit_test::data::xrange(cases().size()), idx) {
  const OpCase& c = cases()[idx];
  BOOST_TEST_CONTEXT(case_name(idx)) {
    DoubleRun run;
    for (std::size_t k = 0; k < c.inputs.size(); ++k) run.in.push_back(make_input(c.inputs[k], c.kinds[k], 100 * idx + k, false));
    for (std::size_t k = 0; k < c.outputs.size(); ++k) {
      run.out.emplace_back(static_cast<std::size_t>(c.outputs[k].numel()));
      run.dout.push_back(make_input(c.outputs[k], InputKind::uniform, 100 * idx + 50 + k, false));
    }
    for (const Shape& s : c.inputs) run.din.emplace_back(static_cast<std::size_t>(s.numel()), NAN);
    c.fwd_d(cptrs(run.in), ptrs(run.out));
    c.bwd_d(cptrs(run.in), cptrs(run.out), cptrs(run.dout), ptrs(run.din));
    constexpr double h = 1e-6;
    for (std::size_t k = 0; k < c.inputs.size(); ++k) {
      if (!c.differentiable[k]) continue;
      const std::size_t n = run.in[k].size();
      const std::size_t stride = std::max<std::size_t>(1, n / 64);  // up to ~64 probes per input
      for (std::size_t i = 0; i < n; i += stride) {
        auto in = run.in;
        in[k][i] += h;
        const double lp = weighted_output(c, in, run.dout);
        in[k][i] -= 2 * h;
        const double lm = weighted_output(c, in, run.dout);
        const double numeric = (lp - lm) / (2 * h), analytic = run.din[k][i];
        BOOST_TEST(std::fabs(numeric - analytic) <= 1e-6 * std::max(1.0, std::fabs(analytic)),
                   "input " << k << " element " << i << ": analytic " << analytic << " numeric " << numeric);
      }
    }
  }
}

// Float32, different summation orders: agreement within 1e-5 of the largest magnitude.
BOOST_DATA_TEST_CASE(onednn_agrees_with_reference, boost::unit_test::data::xrange(cases().size()), idx) {
  if (!backend_available(Backend::onednn)) return;
  const OpCase& c = cases()[idx];
  BOOST_TEST_CONTEXT(case_name(idx)) {
    std::vector<Tensor> in, dout;
    for (std::size_t k = 0; k < c.inputs.size(); ++k) in.push_back(to_tensor(c.inputs[k], make_input(c.inputs[k], c.kinds[k], 7 * idx + k, false)));
    for (std::size_t k = 0; k < c.outputs.size(); ++k) dout.push_back(to_tensor(c.outputs[k], make_input(c.outputs[k], InputKind::uniform, 7 * idx + 40 + k, false)));
    const auto r = float_run(c, Backend::reference, true, in, dout);
    for (bool det : {false, true}) {
      const auto o = float_run(c, Backend::onednn, det, in, dout);
      for (std::size_t k = 0; k < r.size(); ++k)
        BOOST_TEST(rel_diff(r[k], o[k]) <= 1e-5, (det ? "deterministic" : "fast") << " tensor " << k << " rel diff " << rel_diff(r[k], o[k]));
    }
  }
}

// Small integers: every product and partial sum is exact in float32, so any summation
// order gives the same bits; a mismatch is a real indexing bug, not rounding.
BOOST_DATA_TEST_CASE(backends_agree_exactly_on_integers, boost::unit_test::data::xrange(cases().size()), idx) {
  const OpCase& c = cases()[idx];
  if (!c.exact_on_integers || !backend_available(Backend::onednn)) return;
  BOOST_TEST_CONTEXT(case_name(idx)) {
    std::vector<Tensor> in, dout;
    for (std::size_t k = 0; k < c.inputs.size(); ++k) in.push_back(to_tensor(c.inputs[k], make_input(c.inputs[k], c.kinds[k], 3 * idx + k, true)));
    for (std::size_t k = 0; k < c.outputs.size(); ++k) dout.push_back(to_tensor(c.outputs[k], make_input(c.outputs[k], InputKind::uniform, 3 * idx + 40 + k, true)));
    // Max-pool needs distinct window values for a unique winner: add a per-element offset that stays exact.
    if (c.op == ops::Op::maxpool2x2)
      for (Index i = 0; i < in[0].numel(); ++i) in[0].data()[i] = static_cast<float>((i * 37) % 101);
    const auto r = float_run(c, Backend::reference, true, in, dout);
    for (bool det : {false, true}) {
      const auto o = float_run(c, Backend::onednn, det, in, dout);
      // Equal as numbers (oneDNN's ReLU backward writes -0.0 where x = 0 and dy < 0).
      for (std::size_t k = 0; k < r.size(); ++k) {
        Index mismatches = 0;
        for (Index i = 0; i < r[k].numel(); ++i) mismatches += r[k].data()[i] != o[k].data()[i];
        BOOST_TEST(mismatches == 0, (det ? "deterministic" : "fast") << " tensor " << k << ": " << mismatches << " elements differ");
      }
    }
  }
}

// The cases above are small. Deterministic mode's weight gradient runs oneDNN's sgemm inside
// our parallel loop, so it is also checked at student B's training shapes, where a GEMM
// planning its own threads would split the work: all of the sum must be there.
BOOST_AUTO_TEST_CASE(deterministic_weight_gradient_at_training_shapes) {
  if (!backend_available(Backend::onednn)) return;
  struct Dims {
    Index ci, co, h;
  };
  for (const Dims s : {Dims{1, 16, 64}, Dims{16, 128, 32}, Dims{512, 16, 4}}) {
    BOOST_TEST_CONTEXT(s.ci << "->" << s.co << " at " << s.h << "x" << s.h << ", batch 64") {
      const Shape xs{64, s.ci, s.h, s.h}, ys{64, s.co, s.h, s.h};
      const Tensor x = to_tensor(xs, make_input(xs, InputKind::uniform, 1, false));
      const Tensor dy = to_tensor(ys, make_input(ys, InputKind::uniform, 2, false));
      DeterministicScope deterministic(true);
      std::vector<Tensor> grads;  // dw, db of reference, then of onednn
      for (Backend b : {Backend::reference, Backend::onednn}) {
        BackendScope scope(b);
        grads.push_back(Tensor::full({s.co, s.ci, 3, 3}, NAN));
        grads.push_back(Tensor::full({s.co}, NAN));
        ops::conv2d_backward_weights(x, dy, grads[grads.size() - 2], &grads.back());
      }
      for (std::size_t k = 0; k < 2; ++k)
        BOOST_TEST(rel_diff(grads[k], grads[k + 2]) <= 1e-5, (k == 0 ? "dw" : "db") << " rel diff " << rel_diff(grads[k], grads[k + 2]));
    }
  }
}

// Eval-mode batch norm's input gradient without parameter gradients (FGSM, localization) sums
// nothing: in every mode and backend the bits of the deterministic reference call that also
// sums dgamma and dbeta, which is gamma / sqrt(var + eps) dy to float rounding.
BOOST_AUTO_TEST_CASE(batchnorm_eval_input_gradient_alone) {
  const Shape xs{3, 5, 4, 6}, cs{5};
  const Tensor x = to_tensor(xs, make_input(xs, InputKind::uniform, 1, false));
  const Tensor dy = to_tensor(xs, make_input(xs, InputKind::uniform, 2, false));
  const Tensor gamma = to_tensor(cs, make_input(cs, InputKind::uniform, 3, false));
  const Tensor mean = to_tensor(cs, make_input(cs, InputKind::uniform, 4, false));
  const Tensor var = to_tensor(cs, make_input(cs, InputKind::positive, 5, false));
  const float eps = 1e-5f;
  Tensor want = Tensor::full(xs, NAN), dg = Tensor::empty(cs), db = Tensor::empty(cs);
  {
    BackendScope scope(Backend::reference);
    DeterministicScope mode(true);
    ops::batchnorm_backward_eval(x, dy, gamma, mean, var, eps, want, &dg, &db);
  }
  for (Index i = 0; i < x.numel(); ++i) {
    const Index c = (i / 24) % 5;
    const double exact = gamma.data()[c] / std::sqrt(static_cast<double>(var.data()[c]) + eps) * dy.data()[i];
    BOOST_TEST(std::fabs(want.data()[i] - exact) <= 1e-6 * (1 + std::fabs(exact)));
  }
  for (Backend b : test::available_backends())
    for (bool det : {true, false}) {
      BackendScope scope(b);
      DeterministicScope mode(det);
      Tensor dx = Tensor::full(xs, NAN);
      ops::batchnorm_backward_eval(x, dy, gamma, mean, var, eps, dx, nullptr, nullptr);
      BOOST_TEST(std::memcmp(dx.data(), want.data(), sizeof(float) * static_cast<std::size_t>(dx.numel())) == 0,
                 backend_name(b) << (det ? " deterministic" : " fast"));
    }
}

// The distance op sums eight rows at once with AVX-512 where the CPU has it: each row's sums
// must have the bits of row_sums on that row alone, for every row count and length (vector
// steps of 8 elements and a tail), with and without the MSE's sum.
BOOST_AUTO_TEST_CASE(distance_row_sums_on_avx512_have_the_portable_bits) {
  if (!detail::cpu_has_avx512()) return;  // the portable path is the only one on this CPU
  for (const Index d : {1, 7, 8, 9, 64, 1003}) {
    const Index n = 11;  // a full group of 8 rows and one of 3
    std::vector<float> a(static_cast<std::size_t>(n * d)), b(a.size());
    const auto seed = static_cast<std::uint64_t>(d);
    for (std::size_t i = 0; i < a.size(); ++i) {  // magnitudes over 2^-10..2^10: every add rounds
      a[i] = static_cast<float>(std::ldexp(2 * uniform01(seed, i) - 1, static_cast<int>(i % 21) - 10));
      b[i] = i % 13 == 0 ? -0.0f : static_cast<float>(2 * uniform01(seed + 1, i) - 1);
    }
    for (const bool with_mse : {false, true})
      for (const Index i0 : {Index{0}, Index{8}}) {
        ref::RowSums fast[ref::kSumRows];
        ref::row_sums_group(n, d, a.data(), b.data(), with_mse, i0, fast);
        for (Index k = 0; k < std::min(ref::kSumRows, n - i0); ++k) {
          const ref::RowSums one = ref::row_sums(d, a.data() + (i0 + k) * d, b.data() + (i0 + k) * d, with_mse);
          BOOST_TEST(std::memcmp(&one, &fast[k], sizeof one) == 0,
                     "d " << d << ", row " << i0 + k << (with_mse ? ", with mse" : "") << ": a.b " << one.ab << " vs " << fast[k].ab);
        }
      }
  }
}
