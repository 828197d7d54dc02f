// The student's training chain (nn::TrainChain over ops::TrainingChain) against its modules:
// the same tapped outputs, parameter gradients and running statistics. Where the chain runs
// the ops in turn (reference backend, deterministic mode) the bits are the modules'; in
// oneDNN's blocked layouts the sums run in other orders and the results agree to a stated
// tolerance.
#define BOOST_TEST_MODULE train_chain
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "morphokd/models/students.hpp"
#include "morphokd/models/vgg.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/nn/train_chain.hpp"
#include "morphokd/random.hpp"
#include "morphokd_build_config.hpp"
#include "support.hpp"
#if MORPHOKD_HAS_ONEDNN
#include <cstring>

#include "core/cpu_features.hpp"
#include "ops/onednn/maxpool_blocked.hpp"
#endif

using namespace morphokd;
using morphokd::test::expect_error;

namespace {

// Blocked against the modules, per tensor (compare() says against what). The convolutions
// are the same kernels on the same layouts; the batch norms' sums run in another order.
// Measured at most 1.1e-6 on these nets (1.9e-5 for the noise-only bias gradient below); a wrong
// gradient or a missed ReLU gives order 1.
constexpr double kBlockedVsModules = 1e-4;

void fill_uniform(Tensor& t, std::uint64_t seed, float scale = 1.0f) {
  for (Index i = 0; i < t.numel(); ++i) t.data()[i] = scale * static_cast<float>(2 * uniform01(seed, i) - 1);
}

// Student-like nets: convs with and without bias, batch norms except before a pool.
std::unique_ptr<nn::Sequential> net_for(const models::VggSpec& spec) {
  auto net = models::vgg_features(spec, 3);
  std::uint64_t seed = 90;
  for (auto& [name, p] : net->named_parameters()) fill_uniform(p->value, seed++, 0.3f);
  for (std::size_t i = 0; i < net->size(); ++i)
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&net->at(i))) {
      fill_uniform(bn->weight.value, seed++, 0.5f);
      for (float& g : bn->weight.value.span()) g += 1.0f;
    }
  net->train();
  return net;
}

const models::VggSpec kStudentLike{{16, 16, models::kPool, 32, 16, models::kPool}, false, true};
const models::VggSpec kWithBias{{16, models::kPool, 24, 24, models::kPool}, true, true};

// One training step's observable results: tapped outputs, then every parameter gradient, then
// every running statistic.
std::vector<Tensor> step(nn::Sequential& net, nn::TrainChain* chain, const Tensor& x, const std::vector<std::size_t>& taps,
                         const std::vector<Tensor>& grads) {
  std::vector<Tensor> got;
  if (chain) {
    std::vector<Tensor> out;
    chain->forward(x, taps, out);
    chain->backward(grads);
    got = out;
  } else {
    net.forward(x);
    std::map<std::size_t, Tensor> g;
    for (std::size_t i = 0; i < taps.size(); ++i) g[taps[i]] = grads[i];
    net.backward(g, true, nullptr);
    for (std::size_t t : taps) got.push_back(net.output(t).clone());
  }
  for (auto& [name, p] : net.named_parameters()) got.push_back(p->grad.clone());
  for (std::size_t i = 0; i < net.size(); ++i)
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&net.at(i))) {
      got.push_back(bn->running_mean.clone());
      got.push_back(bn->running_var.clone());
    }
  return got;
}

struct Case {
  std::unique_ptr<nn::Sequential> modules, chained;
  std::unique_ptr<nn::TrainChain> chain;
  std::vector<std::size_t> taps;
  Case(const models::VggSpec& spec, std::vector<std::size_t> taps_) : modules(net_for(spec)), chained(net_for(spec)), taps(std::move(taps_)) {
    chain = nn::TrainChain::compile(*chained);
    BOOST_REQUIRE(chain != nullptr);
  }
  std::vector<Tensor> grads_for(const Tensor& x, std::uint64_t seed) const { return grads_for(x, seed, taps); }
  std::vector<Tensor> grads_for(const Tensor& x, std::uint64_t seed, const std::vector<std::size_t>& at) const {
    std::vector<Tensor> g;
    for (std::size_t t : at) {
      g.push_back(Tensor::empty(modules->output_shape(x.shape(), t)));
      fill_uniform(g.back(), seed++);
    }
    return g;
  }
};

double max_abs(const Tensor& t) {
  double m = 0;
  for (float v : t.span()) m = std::max(m, static_cast<double>(std::fabs(v)));
  return m;
}

// Each tensor's max |diff| against its own max |value|, floored at a hundredth of the largest
// value of the step: a conv bias before a batch norm has a zero gradient in exact arithmetic,
// and the one computed is rounding noise in both.
void compare(const std::vector<Tensor>& chain, const std::vector<Tensor>& modules, bool same_bits, const std::string& what) {
  BOOST_REQUIRE_EQUAL(chain.size(), modules.size());
  double largest = 0;
  for (const Tensor& t : modules) largest = std::max(largest, max_abs(t));
  for (std::size_t i = 0; i < chain.size(); ++i) {
    BOOST_REQUIRE(chain[i].shape() == modules[i].shape());
    if (same_bits) {
      BOOST_TEST(std::equal(chain[i].span().begin(), chain[i].span().end(), modules[i].span().begin()), what << ": tensor " << i << " differs");
      continue;
    }
    double diff = 0;
    for (Index k = 0; k < chain[i].numel(); ++k) diff = std::max(diff, std::fabs(double(chain[i].data()[k]) - modules[i].data()[k]));
    const double rel = diff / std::max(max_abs(modules[i]), 1e-2 * largest);
    BOOST_TEST(rel <= kBlockedVsModules, what << ": tensor " << i << " rel error " << rel);
  }
}

}  // namespace

// The parameters move as an optimizer would move them, the same in both nets.
void perturb(nn::Sequential& net, std::uint64_t seed) {
  for (auto& [name, p] : net.named_parameters()) {
    Tensor d = Tensor::empty(p->value.shape());
    fill_uniform(d, seed++, 0.05f);
    p->value.add_from(d);
  }
}

// Two steps with the parameters moved between them (the running statistics move twice), on
// every backend and mode: the ops in turn give the modules' bits, the blocked plan their
// values within kBlockedVsModules. The taps end at the last module, or below it (the blocks
// above still move their running statistics; their gradients are left alone).
BOOST_AUTO_TEST_CASE(chain_matches_the_modules) {
  struct Net {
    const models::VggSpec* spec;
    std::vector<std::size_t> taps;
    const char* name;
  };
  // Blocked, an untapped ReLU output below a pool is not kept (its gradient taken at the pool);
  // "tapped below a pool" keeps one.
  const Net nets[] = {{&kStudentLike, {5, 11}, "student-like"},
                      {&kStudentLike, {5}, "student-like, top tap 5"},
                      {&kWithBias, {2, 5, 8}, "with bias"},
                      {&kWithBias, {1, 8}, "with bias, tapped below a pool"}};
  for (Backend backend : test::available_backends())
    for (bool det : {true, false})
      for (const Net& n : nets) {
        BackendScope scope(backend);
        DeterministicScope mode(det);
        Case c(*n.spec, n.taps);
        const bool blocked = ops::TrainingChain::blocked();
        BOOST_TEST(c.chain->preferred(4) == blocked);
        const std::string what = std::string(backend_name(backend)) + (det ? " deterministic " : " fast ") + n.name;
        for (std::uint64_t s : {1u, 2u}) {
          Tensor x = Tensor::empty({4, 3, 16, 16});
          fill_uniform(x, 10 * s);
          const auto g = c.grads_for(x, 20 * s);
          const auto want = step(*c.modules, nullptr, x, c.taps, g);
          const auto got = step(*c.chained, c.chain.get(), x, c.taps, g);
          compare(got, want, !blocked, what + " step " + std::to_string(s));
          perturb(*c.modules, 30 * s);
          perturb(*c.chained, 30 * s);
        }
      }
}

// A gray batch [N, 1, H, W] stands for its 3 channel copies (the student's input under gray
// normalisations): the chain's first weights summed over their input channels give the modules'
// results on the copies within kBlockedVsModules on every backend and mode (the sums run in
// another order), and every input channel of the first conv the one weight gradient. The
// parameters move between steps, so each step must sum them anew; an RGB batch after gray ones
// is the plain chain's again: outputs and gradients with the modules' bits where the ops run in
// turn (the running statistics keep the gray steps' rounding).
BOOST_AUTO_TEST_CASE(chain_takes_a_gray_batch_for_its_channel_copies) {
  const Index n = 4, hw = 16 * 16;
  for (Backend backend : test::available_backends())
    for (bool det : {true, false}) {
      BackendScope scope(backend);
      DeterministicScope mode(det);
      Case c(kStudentLike, {5, 11});
      for (std::uint64_t s : {1u, 2u, 3u}) {
        const bool gray = s < 3;
        const std::string what = std::string(backend_name(backend)) + (det ? " deterministic" : " fast") + (gray ? " gray step " : " rgb step ") +
                                 std::to_string(s);
        Tensor cell = Tensor::empty({n, 1, 16, 16}), copies = Tensor::empty({n, 3, 16, 16});
        fill_uniform(cell, 40 * s);
        for (Index i = 0; i < n; ++i)
          for (Index ch = 0; ch < 3; ++ch) std::copy_n(cell.data() + i * hw, hw, copies.data() + (i * 3 + ch) * hw);
        const auto g = c.grads_for(copies, 50 * s);
        const auto want = step(*c.modules, nullptr, copies, c.taps, g);
        const auto got = step(*c.chained, c.chain.get(), gray ? cell : copies, c.taps, g);
        std::ptrdiff_t stats = 0;  // running means and variances, which step() puts last
        for (std::size_t i = 0; i < c.chained->size(); ++i) stats += dynamic_cast<nn::BatchNorm2d*>(&c.chained->at(i)) ? 2 : 0;
        compare({got.begin(), got.end() - stats}, {want.begin(), want.end() - stats}, !gray && !ops::TrainingChain::blocked(), what);
        compare({got.end() - stats, got.end()}, {want.end() - stats, want.end()}, false, what + " running statistics");
        const Tensor& dw = dynamic_cast<nn::Conv2d&>(c.chained->at(0)).weight.grad;  // [16, 3, 3, 3]
        for (Index o = 0; gray && o < dw.dim(0); ++o)
          for (Index ch = 1; ch < 3; ++ch)
            BOOST_TEST(std::equal(dw.data() + (o * 3 + ch) * 9, dw.data() + (o * 3 + ch + 1) * 9, dw.data() + o * 3 * 9),
                       what << ": output " << o << ", input channel " << ch);
        perturb(*c.modules, 60 * s);
        perturb(*c.chained, 60 * s);
      }
    }
}

// Fast mode on oneDNN is where the chain is preferred; not with guided ReLUs or Winograd
// convolutions, which it does not compute.
BOOST_AUTO_TEST_CASE(chain_is_preferred_where_it_computes_the_modules) {
  auto net = net_for(kStudentLike);
  auto chain = nn::TrainChain::compile(*net);
  BOOST_REQUIRE(chain != nullptr);
  if (!backend_available(Backend::onednn)) return;
  BackendScope scope(Backend::onednn);
  DeterministicScope mode(false);
  BOOST_TEST(chain->preferred(4));
  net->set_guided(true);
  BOOST_TEST(!chain->preferred(4));
  net->set_guided(false);
  dynamic_cast<nn::Conv2d&>(net->at(0)).algorithm = ops::ConvAlgorithm::winograd;
  BOOST_TEST(!chain->preferred(4));
}

// The blocked plan keeps its buffers across batch sizes (an epoch's last batch is smaller),
// growing them for a larger one, and across taps (a plan per taps: which outputs are kept):
// a batch after others of other sizes and taps gives a fresh chain's bits.
BOOST_AUTO_TEST_CASE(chain_keeps_its_bits_across_batch_sizes) {
  if (!backend_available(Backend::onednn)) return;
  BackendScope scope(Backend::onednn);
  DeterministicScope mode(false);
  const std::vector<std::size_t> taps{5, 11};
  Tensor first = Tensor::empty({3, 3, 16, 16}), large = Tensor::empty({5, 3, 16, 16}), x = Tensor::empty({4, 3, 16, 16});
  fill_uniform(first, 4);
  fill_uniform(large, 5);
  fill_uniform(x, 6);
  Case used(kStudentLike, taps), fresh(kStudentLike, taps);
  step(*used.chained, used.chain.get(), first, taps, used.grads_for(first, 6));
  step(*used.chained, used.chain.get(), large, taps, used.grads_for(large, 7));
  const std::vector<std::size_t> below_pool{4, 11};  // keeps the ReLU output under pool 5
  step(*used.chained, used.chain.get(), large, below_pool, used.grads_for(large, 9, below_pool));
  // the fresh net is brought to the same parameters and running statistics first
  fresh.chained->load_state_dict(used.chained->state_dict(), "used");
  compare(step(*used.chained, used.chain.get(), x, taps, used.grads_for(x, 8)),
          step(*fresh.chained, fresh.chain.get(), x, taps, fresh.grads_for(x, 8)), true, "after batches of 3 and 5, other taps");
}

// Where a conv's output only feeds a max-pool, the blocked plan runs the two a part of the
// batch at a time (up to 2 MB of conv output). Without batch norms each image's outputs are its
// own: 24 images of 64x64 (conv 16->16 at 64x64 in parts of 8) give, image for image, the bits
// of 8 batches of 3 (no parts), and their gradients agree with the modules' as above.
BOOST_AUTO_TEST_CASE(chain_runs_a_conv_and_its_pool_in_parts_with_the_batch_bits) {
  if (!backend_available(Backend::onednn)) return;
  BackendScope scope(Backend::onednn);
  DeterministicScope mode(false);
  const models::VggSpec no_bn{{16, 16, models::kPool, 32, models::kPool}, false, false};
  const std::vector<std::size_t> taps{4, 7};  // the pools' outputs
  Case c(no_bn, taps);
  Tensor x = Tensor::empty({24, 3, 64, 64});
  fill_uniform(x, 11);
  const auto g = c.grads_for(x, 12);
  const auto want = step(*c.modules, nullptr, x, taps, g);
  const auto got = step(*c.chained, c.chain.get(), x, taps, g);
  compare(got, want, false, "in parts");
  const auto parts = ops::onednn_kernels_used();
  BOOST_TEST(std::any_of(parts.begin(), parts.end(), [](const std::string& k) { return k.starts_with("train_conv_pool_parts:0[8,16,64,64,]"); }));
  for (Index b = 0; b < 24; b += 3) {
    std::vector<Tensor> out;
    c.chain->forward(x.slice(b, b + 3).clone(), taps, out);
    for (std::size_t t = 0; t < taps.size(); ++t)
      BOOST_TEST(std::equal(out[t].span().begin(), out[t].span().end(), got[t].slice(b, b + 3).clone().span().begin()),
                 "images " << b << "-" << b + 2 << ", tap " << taps[t]);
  }
}

#if MORPHOKD_HAS_ONEDNN
// The chain's max-pool on AVX-512 CPUs (ours, maxpool_blocked.hpp) against oneDNN's, byte
// for byte, forward (output and workspace) and backward: inputs of few values and both signs
// of zero (a ReLU's outputs), so many windows tie and the tie rule decides. Then the chain
// logs it as the kernel it ran.
BOOST_AUTO_TEST_CASE(our_blocked_maxpool_gives_onednns_bytes) {
  namespace od = onednn::detail;
  using dnnl::memory;
  using tag = memory::format_tag;
  if (!morphokd::detail::cpu_has_avx512()) return;
  auto same = [](const memory& a, const memory& b) {
    return std::memcmp(a.get_data_handle(), b.get_data_handle(), a.get_desc().get_size()) == 0;
  };
  const float values[] = {-0.0f, 0.0f, 0.5f, 1.0f, 1.5f};
  for (const memory::dims& xd : {memory::dims{2, 32, 8, 6}, memory::dims{3, 16, 4, 4}, memory::dims{4, 128, 32, 32}}) {
    const memory::dims yd{xd[0], xd[1], xd[2] / 2, xd[3] / 2};
    const memory::desc x(xd, memory::data_type::f32, tag::aBcd16b), y(yd, memory::data_type::f32, tag::aBcd16b);
    const dnnl::pooling_forward::primitive_desc pd(
        dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max, x, y, {2, 2}, {2, 2},
                                    {0, 0}, {0, 0}),
        od::ctx().eng);
    const dnnl::pooling_backward::primitive_desc bpd(
        dnnl::pooling_backward::desc(dnnl::algorithm::pooling_max, x, y, {2, 2}, {2, 2}, {0, 0}, {0, 0}), od::ctx().eng, pd);
    const memory::desc wsd = pd.workspace_desc();
    BOOST_REQUIRE(od::maxpool16_applies(x, y, wsd));
    BOOST_TEST(od::maxpool16_applies(x, y));
    BOOST_TEST(!od::maxpool16_applies(memory::desc(xd, memory::data_type::f32, tag::aBcd8b), y, wsd));
    BOOST_TEST(!od::maxpool16_applies(x, y, memory::desc(yd, memory::data_type::s32, tag::aBcd16b)));
    memory src(x, od::ctx().eng), dy(y, od::ctx().eng);
    memory theirs[3] = {memory(y, od::ctx().eng), memory(wsd, od::ctx().eng), memory(x, od::ctx().eng)};  // y, ws, dx
    memory ours[3] = {memory(y, od::ctx().eng), memory(wsd, od::ctx().eng), memory(x, od::ctx().eng)};
    auto* v = static_cast<float*>(src.get_data_handle());
    for (std::size_t i = 0; i < x.get_size() / sizeof(float); ++i) v[i] = values[static_cast<int>(5 * uniform01(5, i))];
    auto* g = static_cast<float*>(dy.get_data_handle());
    for (std::size_t i = 0; i < y.get_size() / sizeof(float); ++i) g[i] = static_cast<float>(2 * uniform01(6, i) - 1);
    for (memory& m : ours) std::memset(m.get_data_handle(), 0xff, m.get_desc().get_size());  // every byte must be written
    dnnl::pooling_forward(pd).execute(od::ctx().strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, theirs[0]}, {DNNL_ARG_WORKSPACE, theirs[1]}});
    dnnl::pooling_backward(bpd).execute(od::ctx().strm,
                                        {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WORKSPACE, theirs[1]}, {DNNL_ARG_DIFF_SRC, theirs[2]}});
    od::ctx().strm.wait();
    od::maxpool16_forward(src, ours[0], ours[1]);
    od::maxpool16_backward(dy, ours[1], ours[2]);
    const char* names[3] = {"output", "workspace", "input gradient"};
    for (int k = 0; k < 3; ++k) BOOST_TEST(same(ours[k], theirs[k]), "input " << xd[1] << "x" << xd[2] << ", " << names[k]);
    std::memset(ours[0].get_data_handle(), 0xff, y.get_size());
    od::maxpool16_forward(src, ours[0]);  // inference: no workspace
    BOOST_TEST(same(ours[0], theirs[0]));
  }
  BackendScope scope(Backend::onednn);
  DeterministicScope mode(false);
  Case c(kStudentLike, {5, 11});
  Tensor x = Tensor::empty({2, 3, 16, 16});
  fill_uniform(x, 7);
  step(*c.chained, c.chain.get(), x, {5, 11}, c.grads_for(x, 8));
  const auto used = ops::onednn_kernels_used();
  for (const char* op : {"train_maxpool:", "train_maxpool_bwd:"})
    BOOST_TEST(std::any_of(used.begin(), used.end(), [op](const std::string& k) {
      return k.starts_with(op) && k.ends_with("-> morphokd:maxpool16:avx512");
    }), op);
}
#endif

BOOST_AUTO_TEST_CASE(chain_refuses_what_it_cannot_run) {
  auto linear = std::make_unique<nn::Sequential>("head");
  linear->add(std::make_unique<nn::Linear>(4, 2));
  BOOST_TEST(nn::TrainChain::compile(*linear) == nullptr);
  auto no_relu = std::make_unique<nn::Sequential>("features");
  no_relu->add(std::make_unique<nn::Conv2d>(3, 4, false));
  no_relu->add(std::make_unique<nn::BatchNorm2d>(4));
  BOOST_TEST(nn::TrainChain::compile(*no_relu) == nullptr);

  auto net = net_for(kStudentLike);
  auto chain = nn::TrainChain::compile(*net);
  BOOST_REQUIRE(chain != nullptr);
  Tensor x = Tensor::empty({2, 3, 16, 16});
  fill_uniform(x, 3);
  std::vector<Tensor> out;
  expect_error([&] { chain->forward(x, std::vector<std::size_t>{1}, out); }, {"TrainChain", "module 1", "inside a conv block"});
  expect_error([&] { chain->forward(x, std::vector<std::size_t>{40}, out); }, {"TrainChain", "module 40", "does not exist"});
  expect_error([&] { chain->forward(x, std::vector<std::size_t>{11, 5}, out); }, {"TrainingChain", "increasing"});
  expect_error([&] { chain->backward(std::vector<Tensor>{}); }, {"TrainingChain", "backward before forward"});
  chain->forward(x, std::vector<std::size_t>{5}, out);
  expect_error([&] { chain->backward(std::vector<Tensor>{Tensor::zeros({2, 16, 4, 4})}); }, {"TrainingChain output gradient"});
  expect_error([&] { chain->backward(std::vector<Tensor>{}); }, {"TrainingChain", "one gradient per tap"});
  net->eval();
  BOOST_TEST(!chain->preferred(2));
  expect_error([&] { chain->forward(x, std::vector<std::size_t>{5}, out); }, {"TrainChain", "eval mode"});
}
