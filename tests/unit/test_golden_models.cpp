// Module stacks and optimizers against PyTorch goldens: a conv-BN-ReLU-pool stack (forward,
// backward, running statistics), SGD and Adam steps, all 31 VGG16 feature layers, and the
// ImageNet-normalised teacher input.
#define BOOST_TEST_MODULE golden_models
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "support.hpp"
#include "morphokd/data/transform.hpp"
#include "morphokd/models/students.hpp"
#include "morphokd/models/teacher.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/pipeline/detector.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/nn/optim.hpp"
#include "morphokd/random.hpp"

using namespace morphokd;
using test::fixture;
namespace bdata = boost::unit_test::data;

BOOST_DATA_TEST_CASE(conv_bn_relu_pool_stack, bdata::make(test::available_backends()), backend) {
  BackendScope scope(backend);
  const auto f = fixture("stack");
  nn::Sequential net("in");  // the fixture's state_dict before the step is named in.{i}.*
  net.add(std::make_unique<nn::Conv2d>(3, 8, false));
  net.add(std::make_unique<nn::BatchNorm2d>(8));
  net.add(std::make_unique<nn::ReLU>());
  net.add(std::make_unique<nn::MaxPool2d>());
  net.load_state_dict(f, "stack");
  const Tensor& x = f.tensor("x", "");
  const Tensor& y = net.forward(x);
  Tensor dx = Tensor::full(x.shape(), NAN);
  net.backward({{3, f.tensor("dy", "")}}, true, &dx);
  constexpr double tol = 1e-5;
  MORPHOKD_CHECK_GOLDEN(y, f, "y", tol);
  MORPHOKD_CHECK_GOLDEN(dx, f, "dx", tol);
  auto& conv = dynamic_cast<nn::Conv2d&>(net.at(0));
  auto& bn = dynamic_cast<nn::BatchNorm2d&>(net.at(1));
  MORPHOKD_CHECK_GOLDEN(conv.weight.grad, f, "grad.0.weight", tol);
  MORPHOKD_CHECK_GOLDEN(bn.weight.grad, f, "grad.1.weight", tol);
  MORPHOKD_CHECK_GOLDEN(bn.bias.grad, f, "grad.1.bias", tol);
  MORPHOKD_CHECK_GOLDEN(bn.running_mean, f, "out.1.running_mean", tol);
  MORPHOKD_CHECK_GOLDEN(bn.running_var, f, "out.1.running_var", tol);
  BOOST_TEST(bn.num_batches_tracked == f.tensors.at("out.1.num_batches_tracked").ints.at(0));
}

namespace {
float meta(const SafetensorsFile& f, const std::string& key) { return std::stof(f.metadata.at(key)); }

// Runs `steps` optimizer steps from p0 with gradients g1.. and checks p1.. after each.
template <class Optimizer, class Options>
void check_steps(const std::string& name, Options options) {
  const auto f = fixture(name);
  std::vector<nn::Parameter> params;
  for (const char* p : {"a", "b"}) {
    const Tensor& v = f.tensor(std::string("p0.") + p, name);
    params.push_back({p, v.clone(), Tensor::zeros(v.shape())});
  }
  std::vector<nn::Parameter*> ptrs{&params[0], &params[1]};
  Optimizer opt(ptrs, options);
  const int steps = std::stoi(f.metadata.at("steps"));
  BOOST_REQUIRE(steps >= 2);
  for (int s = 1; s <= steps; ++s) {
    for (auto& p : params) p.grad.copy_from(f.tensor("g" + std::to_string(s) + "." + p.name, name));
    opt.step();
    // float32 torch.optim may fuse multiply-adds: allow a few ulps of the parameter scale.
    for (auto& p : params) MORPHOKD_CHECK_GOLDEN(p.value, f, "p" + std::to_string(s) + "." + p.name, 1e-6);
  }
}
}  // namespace

BOOST_AUTO_TEST_CASE(sgd_steps) {
  for (const char* name : {"sgd", "sgd_plain", "sgd_nomomentum"}) {
    BOOST_TEST_CONTEXT(name) {
      const auto f = fixture(name);
      nn::SgdOptions o{meta(f, "lr"), meta(f, "momentum"), meta(f, "dampening"), meta(f, "weight_decay"),
                       f.metadata.at("nesterov") == "true"};
      check_steps<nn::Sgd>(name, o);
    }
  }
}

BOOST_AUTO_TEST_CASE(adam_steps) {
  for (const char* name : {"adam", "adam_wd"}) {
    BOOST_TEST_CONTEXT(name) {
      const auto f = fixture(name);
      BOOST_REQUIRE(f.metadata.at("amsgrad") == "false");
      nn::AdamOptions o{meta(f, "lr"), meta(f, "beta1"), meta(f, "beta2"), meta(f, "eps"), meta(f, "weight_decay")};
      check_steps<nn::Adam>(name, o);
    }
  }
}

namespace {
// The fixture's deterministic VGG16 weights (tests/golden/README.md), regenerated here so
// the 58 MB of weights need not be committed.
void fill_vgg16_test_weights(nn::Sequential& net) {
  for (int k : models::kVgg16ConvIndices) {
    auto& conv = dynamic_cast<nn::Conv2d&>(net.at(static_cast<std::size_t>(k)));
    const Tensor& w = conv.weight.value;
    const double a = std::sqrt(6.0 / (9.0 * static_cast<double>(w.dim(1)) + 9.0 * static_cast<double>(w.dim(0))));
    for (Index i = 0; i < w.numel(); ++i)
      conv.weight.value.data()[i] = static_cast<float>((2 * uniform01(1000 + k, i) - 1) * a);
    for (Index i = 0; i < conv.bias.value.numel(); ++i)
      conv.bias.value.data()[i] = static_cast<float>((2 * uniform01(2000 + k, i) - 1) * 0.1);
  }
}
}  // namespace

// All 31 modules: conv outputs and pools compared directly, ReLU outputs against
// max(golden conv, 0). Tolerance rel 1e-4 per layer, the bound the forward CLI promises.
BOOST_DATA_TEST_CASE(vgg16_all_layers, bdata::make(test::available_backends()), backend) {
  BackendScope scope(backend);
  const auto f = fixture("vgg16_32");
  auto net = models::vgg16_features();
  net->eval();
  fill_vgg16_test_weights(*net);
  auto& conv0 = dynamic_cast<nn::Conv2d&>(net->at(0));
  BOOST_TEST(test::checked_rel_error(conv0.weight.value, f.tensor("w.0", "")) == 0.0);  // bit-exact regeneration
  BOOST_TEST(test::checked_rel_error(conv0.bias.value, f.tensor("b.0", "")) == 0.0);
  Tensor x = Tensor::empty({1, 3, 32, 32});
  for (Index i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(uniform01(7, i));
  BOOST_REQUIRE(test::checked_rel_error(x, f.tensor("x", "")) == 0.0);
  net->forward(x);
  double worst = 0;
  for (int k = 0; k < models::kVgg16Modules; ++k) {
    const std::string key = "features." + std::to_string(k);
    double rel;
    if (f.contains(key)) {
      rel = test::checked_rel_error(net->output(static_cast<std::size_t>(k)), f.tensor(key, ""));
    } else {  // a ReLU: compare with the rectified golden conv output
      Tensor expected = f.tensor("features." + std::to_string(k - 1), "").clone();
      for (float& v : expected.span()) v = std::max(v, 0.0f);
      rel = test::checked_rel_error(net->output(static_cast<std::size_t>(k)), expected);
    }
    BOOST_TEST(rel <= 1e-4, key << ": rel error " << rel);
    worst = std::max(worst, rel);
  }
  BOOST_TEST_MESSAGE(backend << ": worst layer rel error " << worst);
}

// --input-norm imagenet: the detector replicates the gray cell, normalises each channel with
// ImageNet's mean and std and runs the unfolded 3-channel teacher, as torchvision's
// transforms.Normalize + vgg16 do (tests/golden/make_imagenet_fixture.py).
BOOST_DATA_TEST_CASE(imagenet_normalised_teacher, bdata::make(test::available_backends()), backend) {
  BackendScope scope(backend);
  const auto f = fixture("vgg16_imagenet_32");
  models::Teacher teacher;
  teacher.net = models::vgg16_features(3);
  teacher.net->eval();
  teacher.channels = 3;
  fill_vgg16_test_weights(*teacher.net);
  const models::VggSpec& spec = models::student_spec("B");
  pipeline::Detector det(std::move(teacher), models::vgg_features(spec, 3), spec, {}, data::InputTransform::parse("imagenet"));
  Tensor gray = f.tensor("gray", "").clone();
  det.input().apply(gray);  // a no-op on gray cells for imagenet: the work is in to_rgb
  const std::vector<Tensor> maps = det.teacher_maps(gray, {1, 2, 3, 4, 5});
  for (int k = 1; k <= 5; ++k) MORPHOKD_CHECK_GOLDEN(maps[static_cast<std::size_t>(k - 1)], f, "pool." + std::to_string(k), 1e-5);
}
