// Every op, both backends, against PyTorch 1.13 goldens (tests/golden/make_fixtures.py).
// Goldens are float64 results of the float32 inputs; tolerance rel 1e-5 per op (max abs
// error over max abs value), the float32 target the core issue sets.
#define BOOST_TEST_MODULE golden_ops
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "support.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/ops/ops.hpp"

using namespace morphokd;
using test::fixture;
namespace bdata = boost::unit_test::data;

namespace {
constexpr double kTol = 1e-5;
Tensor like(const Tensor& t) { return Tensor::full(t.shape(), NAN); }
std::string n(const char* family, int k) { return std::string(family) + "_" + std::to_string(k); }

// The onednn backend runs its own kernels for every op here: deterministic mode would hand
// some directions to the reference kernels, which the reference backend's cases cover.
struct OneDnnKernelsThroughout {
  OneDnnKernelsThroughout() { set_deterministic(false); }
};
}  // namespace
BOOST_TEST_GLOBAL_FIXTURE(OneDnnKernelsThroughout);

BOOST_DATA_TEST_CASE(conv2d, bdata::make(test::available_backends()) * bdata::xrange(4), backend, k) {
  BackendScope scope(backend);
  const auto f = fixture(n("conv2d", k));
  const Tensor& x = f.tensor("x", "");
  const Tensor& w = f.tensor("w", "");
  const bool bias = f.contains("b");
  Tensor y = like(f.tensor("y", "")), dx = like(x), dw = like(w), db = bias ? like(f.tensor("b", "")) : Tensor();
  ops::conv2d_forward(x, w, bias ? &f.tensor("b", "") : nullptr, y);
  ops::conv2d_backward_data(f.tensor("dy", ""), w, dx);
  ops::conv2d_backward_weights(x, f.tensor("dy", ""), dw, bias ? &db : nullptr);
  MORPHOKD_CHECK_GOLDEN(y, f, "y", kTol);
  MORPHOKD_CHECK_GOLDEN(dx, f, "dx", kTol);
  MORPHOKD_CHECK_GOLDEN(dw, f, "dw", kTol);
  if (bias) MORPHOKD_CHECK_GOLDEN(db, f, "db", kTol);
}

BOOST_DATA_TEST_CASE(relu, bdata::make(test::available_backends()) * bdata::xrange(2), backend, k) {
  BackendScope scope(backend);
  const auto f = fixture(n("relu", k));
  const Tensor& x = f.tensor("x", "");
  Tensor y = like(x), dx = like(x);
  ops::relu_forward(x, y);
  ops::relu_backward(x, f.tensor("dy", ""), dx);
  MORPHOKD_CHECK_GOLDEN(y, f, "y", 0.0);  // exact: a copy or a zero
  MORPHOKD_CHECK_GOLDEN(dx, f, "dx", 0.0);
}

BOOST_DATA_TEST_CASE(maxpool, bdata::make(test::available_backends()) * bdata::xrange(3), backend, k) {
  BackendScope scope(backend);
  const auto f = fixture(n("maxpool", k));
  const Tensor& x = f.tensor("x", "");
  Tensor y = like(f.tensor("y", "")), dx = like(x);
  ops::PoolWorkspace ws;
  ops::maxpool2x2_forward(x, y, ws);
  ops::maxpool2x2_backward(f.tensor("dy", ""), ws, dx);
  MORPHOKD_CHECK_GOLDEN(y, f, "y", 0.0);  // exact: a selection
  MORPHOKD_CHECK_GOLDEN(dx, f, "dx", 0.0);
}

// Through the BatchNorm2d module, which also owns the running-statistics update.
BOOST_DATA_TEST_CASE(batchnorm_train, bdata::make(test::available_backends()) * bdata::xrange(3), backend, k) {
  BackendScope scope(backend);
  const auto f = fixture(n("batchnorm_train", k));
  const Tensor& x = f.tensor("x", "");
  nn::BatchNorm2d bn(x.dim(1));
  bn.weight.value.copy_from(f.tensor("gamma", ""));
  bn.bias.value.copy_from(f.tensor("beta", ""));
  bn.running_mean.copy_from(f.tensor("running_mean_in", ""));
  bn.running_var.copy_from(f.tensor("running_var_in", ""));
  Tensor y = like(x), dx = like(x);
  bn.forward(x, y);
  bn.backward(x, y, f.tensor("dy", ""), &dx, true);
  MORPHOKD_CHECK_GOLDEN(y, f, "y", kTol);
  MORPHOKD_CHECK_GOLDEN(bn.running_mean, f, "running_mean_out", kTol);
  MORPHOKD_CHECK_GOLDEN(bn.running_var, f, "running_var_out", kTol);
  MORPHOKD_CHECK_GOLDEN(dx, f, "dx", kTol);
  MORPHOKD_CHECK_GOLDEN(bn.weight.grad, f, "dgamma", kTol);
  MORPHOKD_CHECK_GOLDEN(bn.bias.grad, f, "dbeta", kTol);
  BOOST_TEST(bn.num_batches_tracked == 1);
}

BOOST_DATA_TEST_CASE(batchnorm_eval, bdata::make(test::available_backends()) * bdata::xrange(2), backend, k) {
  BackendScope scope(backend);
  const auto f = fixture(n("batchnorm_eval", k));
  const Tensor& x = f.tensor("x", "");
  nn::BatchNorm2d bn(x.dim(1));
  bn.set_training(false);
  bn.weight.value.copy_from(f.tensor("gamma", ""));
  bn.bias.value.copy_from(f.tensor("beta", ""));
  bn.running_mean.copy_from(f.tensor("running_mean", ""));
  bn.running_var.copy_from(f.tensor("running_var", ""));
  Tensor y = like(x), dx = like(x);
  bn.forward(x, y);
  bn.backward(x, y, f.tensor("dy", ""), &dx, true);
  MORPHOKD_CHECK_GOLDEN(y, f, "y", kTol);
  MORPHOKD_CHECK_GOLDEN(dx, f, "dx", kTol);
  MORPHOKD_CHECK_GOLDEN(bn.weight.grad, f, "dgamma", kTol);
  MORPHOKD_CHECK_GOLDEN(bn.bias.grad, f, "dbeta", kTol);
  BOOST_TEST(bn.num_batches_tracked == 0);  // eval never moves the statistics
}

BOOST_DATA_TEST_CASE(linear, bdata::make(test::available_backends()) * bdata::xrange(3), backend, k) {
  BackendScope scope(backend);
  const auto f = fixture(n("linear", k));
  const Tensor& x = f.tensor("x", "");
  const Tensor& w = f.tensor("w", "");
  Tensor y = like(f.tensor("y", "")), dx = like(x), dw = like(w), db = like(f.tensor("b", ""));
  ops::linear_forward(x, w, &f.tensor("b", ""), y);
  ops::linear_backward_data(f.tensor("dy", ""), w, dx);
  ops::linear_backward_weights(x, f.tensor("dy", ""), dw, &db);
  MORPHOKD_CHECK_GOLDEN(y, f, "y", kTol);
  MORPHOKD_CHECK_GOLDEN(dx, f, "dx", kTol);
  MORPHOKD_CHECK_GOLDEN(dw, f, "dw", kTol);
  MORPHOKD_CHECK_GOLDEN(db, f, "db", kTol);
}

BOOST_DATA_TEST_CASE(global_avg_pool, bdata::make(test::available_backends()) * bdata::xrange(3), backend, k) {
  BackendScope scope(backend);
  const auto f = fixture(n("gap", k));
  Tensor y = like(f.tensor("y", "")), dx = like(f.tensor("x", ""));
  ops::global_avg_pool_forward(f.tensor("x", ""), y);
  ops::global_avg_pool_backward(f.tensor("dy", ""), dx);
  MORPHOKD_CHECK_GOLDEN(y, f, "y", kTol);
  MORPHOKD_CHECK_GOLDEN(dx, f, "dx", kTol);
}

BOOST_DATA_TEST_CASE(softmax_cross_entropy, bdata::make(test::available_backends()) * bdata::xrange(3), backend, k) {
  BackendScope scope(backend);
  const auto f = fixture(n("softmax_ce", k));
  const Tensor& logits = f.tensor("logits", "");
  const std::vector<std::int64_t>& labels = f.tensors.at("labels").ints;
  Tensor probs = like(logits), dlogits = like(logits);
  const double loss = ops::softmax_cross_entropy_forward(logits, labels, probs);
  ops::softmax_cross_entropy_backward(probs, labels, 1.0f, dlogits);
  const double expected = f.tensor("loss", "").data()[0];
  BOOST_TEST(std::fabs(loss - expected) <= kTol * std::fabs(expected));
  MORPHOKD_CHECK_GOLDEN(dlogits, f, "dlogits", kTol);
}

// The distance op against PyTorch's cosine similarity and per-sample MSE, one fixture each
// (their inputs differ): the other output's gradient is zero, so da and db are one part's.
BOOST_DATA_TEST_CASE(distance, bdata::make(test::available_backends()) * bdata::xrange(3), backend, k) {
  BackendScope scope(backend);
  for (const char* family : {"cosine", "mse"}) {
    BOOST_TEST_CONTEXT(family) {
      const auto f = fixture(n(family, k));
      const Tensor& a = f.tensor("a", "");
      const Tensor& b = f.tensor("b", "");
      const Tensor& dy = f.tensor("dy", "");
      const Tensor zero = Tensor::full(dy.shape(), 0.0f);
      Tensor cos = like(dy), mse = like(dy), da = like(a), db = like(b);
      const bool is_cos = std::string(family) == "cosine";
      ops::distance_forward(a, b, cos, mse);
      ops::distance_backward(a, b, is_cos ? dy : zero, is_cos ? zero : dy, &da, &db);
      MORPHOKD_CHECK_GOLDEN(is_cos ? cos : mse, f, "y", kTol);
      MORPHOKD_CHECK_GOLDEN(da, f, "da", kTol);
      MORPHOKD_CHECK_GOLDEN(db, f, "db", kTol);
    }
  }
}
