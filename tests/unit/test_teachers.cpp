// Offline teachers and the input pipeline (issue 4): BatchNorm folding, random inits, the
// IDX reader, the rotation pretext task, CLAHE / ImageNet input and the score rules.
#define BOOST_TEST_MODULE teachers
#include <zlib.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <filesystem>

#include "support.hpp"
#include "morphokd/data/idx.hpp"
#include "morphokd/data/pretext.hpp"
#include "morphokd/data/transform.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/method/score_rule.hpp"
#include "morphokd/models/bn_fold.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/random.hpp"
#include "morphokd_build_config.hpp"

using namespace morphokd;
using test::expect_error;
namespace fs = std::filesystem;

namespace {

Tensor uniform_tensor(const Shape& s, std::uint64_t seed, double lo, double hi) {
  Tensor t = Tensor::empty(s);
  for (Index i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(lo + (hi - lo) * uniform01(seed, static_cast<std::uint64_t>(i)));
  return t;
}

fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("morphokd_test_teachers_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d / name;
}

void write_bytes(const fs::path& p, const std::string& bytes, bool gzip) {
  if (!gzip) {
    write_file_atomic(p.string(), std::as_bytes(std::span(bytes.data(), bytes.size())));
    return;
  }
  gzFile f = gzopen(p.string().c_str(), "wb");
  BOOST_REQUIRE(f != nullptr);
  BOOST_REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  gzclose(f);
}

// An IDX header: magic 0x0000 TT DD then big-endian sizes.
std::string idx_header(std::uint8_t type, std::vector<std::uint32_t> dims) {
  std::string h{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) h += static_cast<char>((d >> s) & 0xff);
  return h;
}

}  // namespace

// A VGG-BN net in eval mode with non-trivial statistics equals its folded plain net.
BOOST_AUTO_TEST_CASE(batch_norm_folding_is_exact) {
  const models::VggSpec spec{{8, 8, models::kPool, 16, 16, models::kPool}, /*bias=*/true, /*batch_norm=*/true};
  auto bn_net = models::vgg_features(spec, 3);
  models::init_weights(*bn_net, 11, models::WeightInit::torch);  // nonzero conv biases
  int k = 0;
  for (std::size_t i = 0; i < bn_net->size(); ++i)
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&bn_net->at(i))) {
      const Index c = bn->running_mean.numel();
      bn->weight.value.copy_from(uniform_tensor({c}, 100 + k, 0.5, 2.0));
      bn->bias.value.copy_from(uniform_tensor({c}, 200 + k, -0.5, 0.5));
      bn->running_mean.copy_from(uniform_tensor({c}, 300 + k, -0.3, 0.3));
      bn->running_var.copy_from(uniform_tensor({c}, 400 + k, 0.2, 3.0));
      ++k;
    }
  BOOST_TEST(k == 2);  // convs before a pool have no BN in this layout
  bn_net->eval();
  auto plain = models::fold_batch_norm(*bn_net, spec, 3);
  BOOST_TEST(plain->size() == 10u);  // (conv relu conv relu pool) x 2: the BNs are gone
  const Tensor x = uniform_tensor({2, 3, 16, 16}, 7, -1, 1);
  const Tensor want = bn_net->forward(x).clone();
  const Tensor got = plain->forward(x).clone();
  const double rel = test::checked_rel_error(got, want);
  BOOST_TEST(rel <= 2e-6, "folded vs BN net: rel " << rel);

  // ...and the exported names are torchvision's plain-VGG names, loadable back into a BN net.
  const SafetensorsFile sd = plain->state_dict();
  BOOST_TEST(sd.contains("features.5.weight"));
  BOOST_TEST(!sd.contains("features.1.running_mean"));
  auto again = models::vgg_features(spec, 3);
  models::load_plain_into_bn(*again, spec, sd, "folded");
  again->eval();  // BNs at identity statistics only scale by 1 / sqrt(1 + eps) each
  BOOST_TEST(test::checked_rel_error(again->forward(x), got) <= 2e-5);
  SafetensorsFile broken = sd;
  broken.tensors.erase("features.5.weight");
  expect_error([&] { models::load_plain_into_bn(*again, spec, broken, "t.safetensors"); }, {"t.safetensors", "features.5.weight"});
}

BOOST_AUTO_TEST_CASE(random_teacher_inits) {
  auto xavier = models::open_vgg16_teacher("random:2"), same = models::open_vgg16_teacher("random:2:xavier");
  auto kaiming = models::open_vgg16_teacher("random:2:kaiming"), torch = models::open_vgg16_teacher("random:2:torch");
  auto conv = [](nn::Sequential& n, std::size_t i) -> nn::Conv2d& { return dynamic_cast<nn::Conv2d&>(n.at(i)); };
  // Layer 2 (64 -> 64): xavier bound sqrt(6/1152), kaiming sqrt(6/576) (same draws, scaled), torch 1/sqrt(576).
  const float wx = conv(*xavier, 2).weight.value.data()[5], wk = conv(*kaiming, 2).weight.value.data()[5];
  BOOST_TEST(wx == conv(*same, 2).weight.value.data()[5]);
  BOOST_TEST(std::abs(wk / wx - std::sqrt(2.0)) < 1e-5);
  float max_w = 0, max_b = 0;
  for (float v : conv(*torch, 2).weight.value.span()) max_w = std::max(max_w, std::abs(v));
  for (float v : conv(*torch, 2).bias.value.span()) max_b = std::max(max_b, std::abs(v));
  BOOST_TEST(max_w <= 1 / 24.0f);
  BOOST_TEST(max_w > 0.95f / 24.0f);
  BOOST_TEST(max_b > 0.5f / 24.0f);  // torch draws biases; xavier and kaiming keep them zero
  BOOST_TEST(conv(*kaiming, 2).bias.value.data()[0] == 0.0f);
  expect_error([] { models::open_vgg16_teacher("random:1:he"); }, {"random:1:he", "xavier, kaiming or torch"});
}

BOOST_AUTO_TEST_CASE(idx_reader_reads_plain_and_gzip) {
  std::string images = idx_header(0x08, {2, 2, 3}), labels = idx_header(0x08, {2});
  for (int i = 0; i < 12; ++i) images += static_cast<char>(i * 20);
  labels += std::string{'\x07', '\x02'};
  write_bytes(scratch("train-images-idx3-ubyte.gz"), images, true);
  write_bytes(scratch("train-labels-idx1-ubyte"), labels, false);
  const data::IdxArray a = data::read_idx(scratch("train-images-idx3-ubyte.gz").string());
  BOOST_TEST(a.dims == (std::vector<std::int64_t>{2, 2, 3}), boost::test_tools::per_element());
  BOOST_TEST(a.values[11] == 220);
  const data::LabelledImages d = data::load_idx_dataset(scratch("").string(), "train");
  BOOST_TEST(d.images.shape() == (Shape{2, 1, 2, 3}));
  BOOST_TEST(d.images.data()[7] == 140.0f / 255.0f);
  BOOST_TEST(d.labels == (std::vector<std::int64_t>{7, 2}), boost::test_tools::per_element());
  BOOST_TEST(d.classes == 8);
  BOOST_TEST(data::load_idx_dataset(scratch("").string(), "train", 1).labels.size() == 1u);
}

BOOST_AUTO_TEST_CASE(idx_reader_rejects_malformed_files) {
  const std::string good = idx_header(0x08, {2, 2, 2}) + std::string(8, '\x01');
  const struct {
    const char* name;
    std::string bytes;
    bool gzip;
    std::vector<std::string> words;
  } cases[] = {
      {"short", "\0\0", false, {"too short"}},
      {"magic", "\1\0\x08\x01" + std::string(5, '\0'), false, {"not an IDX file"}},
      {"float", idx_header(0x0D, {2}) + std::string(8, '\0'), false, {"not unsigned byte"}},
      {"rank", idx_header(0x08, {}) , false, {"rank 0"}},
      {"header", idx_header(0x08, {2, 2, 2}).substr(0, 10), false, {"truncated IDX header"}},
      {"zero", idx_header(0x08, {0}), false, {"dimension 0 is zero"}},
      {"truncated", good.substr(0, good.size() - 3), true, {"truncated", "header promises 8"}},
      {"trailing", good + "xy", true, {"2 bytes after the last value"}},
  };
  for (const auto& c : cases) {
    const fs::path p = scratch(std::string(c.name) + (c.gzip ? ".gz" : ""));
    write_bytes(p, c.bytes, c.gzip);
    std::vector<std::string> words{p.string()};
    words.insert(words.end(), c.words.begin(), c.words.end());
    try {
      data::read_idx(p.string());
      BOOST_ERROR(c.name << ": no error");
    } catch (const Error& e) {
      for (const auto& w : words) BOOST_TEST(std::string(e.what()).find(w) != std::string::npos, c.name << ": '" << e.what() << "' lacks '" << w << "'");
    }
  }
  // A gzip stream cut in half.
  write_bytes(scratch("cut.gz"), good + std::string(4000, '\x05'), true);
  const auto bytes = read_file(scratch("cut.gz").string());
  write_file_atomic(scratch("cut.gz").string(), std::span(bytes).first(bytes.size() / 2));
  expect_error([] { data::read_idx(scratch("cut.gz").string()); }, {"cut.gz"});
  expect_error([] { data::read_idx(scratch("absent.gz").string()); }, {"absent.gz", "no such file"});
  // Images and labels that disagree in count.
  const fs::path dir = scratch("mismatch");
  fs::create_directories(dir);
  write_bytes(dir / "train-images-idx3-ubyte", good, false);
  write_bytes(dir / "train-labels-idx1-ubyte", idx_header(0x08, {3}) + "\1\2\3", false);
  expect_error([&] { data::load_idx_dataset(dir.string(), "train"); }, {"3 labels for 2 images"});
  expect_error([&] { data::load_idx_dataset(dir.string(), "t10k"); }, {"t10k-images-idx3-ubyte", "dataset-fashion-mnist"});
}

// Debian's dataset-fashion-mnist, when installed: sizes and the first labels of its train split.
BOOST_AUTO_TEST_CASE(fashion_mnist_package_when_installed) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/train-labels-idx1-ubyte.gz")) return;
  const data::IdxArray labels = data::read_idx(dir + "/train-labels-idx1-ubyte.gz");
  BOOST_TEST(labels.dims == (std::vector<std::int64_t>{60000}), boost::test_tools::per_element());
  const std::vector<std::uint8_t> first(labels.values.begin(), labels.values.begin() + 10);
  BOOST_TEST(first == (std::vector<std::uint8_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}), boost::test_tools::per_element());
  const data::LabelledImages d = data::load_idx_dataset(dir, "t10k", 5);
  BOOST_TEST(d.images.shape() == (Shape{5, 1, 28, 28}));
  BOOST_TEST(d.classes == 10);
}

BOOST_AUTO_TEST_CASE(rotation_pretext_task) {
  // numpy.rot90([[0, 1, 2], [3, 4, 5], [6, 7, 8]]) = [[2, 5, 8], [1, 4, 7], [0, 3, 6]]
  Tensor x = Tensor::empty({2, 1, 3, 3});
  for (Index i = 0; i < 18; ++i) x.data()[i] = static_cast<float>(i % 9);
  Tensor y;
  const int k1[] = {1, 2};
  data::rotate_quarter_turns(x, y, k1);
  const std::vector<float> rot1{2, 5, 8, 1, 4, 7, 0, 3, 6}, rot2{8, 7, 6, 5, 4, 3, 2, 1, 0};
  BOOST_TEST(std::vector<float>(y.data(), y.data() + 9) == rot1, boost::test_tools::per_element());
  BOOST_TEST(std::vector<float>(y.data() + 9, y.data() + 18) == rot2, boost::test_tools::per_element());
  const Tensor cells = uniform_tensor({3, 1, 8, 8}, 4, 0, 1);
  Tensor a, b;
  const int k3[] = {3, 3, 3}, k4[] = {1, 1, 1};
  data::rotate_quarter_turns(cells, a, k3);
  data::rotate_quarter_turns(a, b, k4);  // three turns and one more: the cell itself
  BOOST_TEST(std::equal(b.span().begin(), b.span().end(), cells.span().begin()));
  int counts[4] = {};
  for (std::int64_t id = 0; id < 4000; ++id) {
    const int k = data::rotation_label(5, 2, id);
    BOOST_REQUIRE(k >= 0 && k < 4);
    BOOST_TEST(k == data::rotation_label(5, 2, id));  // a pure function of (seed, epoch, id)
    ++counts[k];
  }
  for (int c : counts) BOOST_TEST(std::abs(c - 1000) < 120, "label counts " << counts[0] << " " << counts[1] << " " << counts[2] << " " << counts[3]);
  int moved = 0;
  for (std::int64_t id = 0; id < 100; ++id) moved += data::rotation_label(5, 2, id) != data::rotation_label(5, 3, id);
  BOOST_TEST(moved > 50);  // each epoch draws anew
}

BOOST_AUTO_TEST_CASE(input_pipeline_imagenet_and_clahe) {
  const data::InputTransform t = data::InputTransform::parse("imagenet");
  BOOST_TEST(t.channels() == 3);
  Tensor g = Tensor::empty({1, 1, 1, 2});
  g.data()[0] = 0.485f;
  g.data()[1] = 1.0f;
  Tensor rgb;
  t.to_rgb(g, rgb);
  BOOST_TEST(rgb.data()[0] == 0.0f);
  BOOST_TEST(std::abs(rgb.data()[5] - (1.0f - 0.406f) / 0.225f) < 1e-6);
  BOOST_TEST(data::InputTransform::parse("clahe+image").spec() == "clahe+image");
  BOOST_TEST(data::InputTransform::parse("clahe").spec() == "clahe+none");
  expect_error([] { data::InputTransform::parse("clahe+imagenett"); }, {"clahe+imagenett", "--input-norm"});
#if MORPHOKD_HAS_OPENCV
  // A low-contrast cell (MHSMA-like: mean 126, std ~13 of 255) comes out with more contrast,
  // on the 8-bit grid, and equalisation is deterministic.
  Tensor cell = Tensor::empty({1, 1, 64, 64});
  for (Index i = 0; i < 4096; ++i) cell.data()[i] = std::round(126.0f + 22.0f * static_cast<float>(uniform01(9, i) - 0.5)) / 255.0f;
  Tensor eq = cell.clone(), eq2 = cell.clone();
  data::InputTransform::parse("clahe").apply(eq);
  data::InputTransform::parse("clahe").apply(eq2);
  auto sd = [](const Tensor& x) {
    double s = 0, q = 0;
    for (float v : x.span()) s += v;
    for (float v : x.span()) q += (v - s / 4096) * (v - s / 4096);
    return std::sqrt(q / 4096);
  };
  BOOST_TEST(sd(eq) > 2 * sd(cell));
  BOOST_TEST(std::equal(eq.span().begin(), eq.span().end(), eq2.span().begin()));
  for (float v : eq.span()) BOOST_REQUIRE(std::abs(v * 255.0f - std::round(v * 255.0f)) < 1e-3);
#endif
}

BOOST_AUTO_TEST_CASE(score_rules) {
  // 4 cells x 2 layers; labels 0 0 0 1. Layer means over the normal rows: 2 and 20,
  // sample std 1 and 10.
  const std::vector<double> terms{1, 10, 2, 20, 3, 30, 5, 50};
  const std::vector<std::uint8_t> labels{0, 0, 0, 1};
  method::ScoreRule sum = method::ScoreRule::parse("sum", "none");
  sum.calibrate(terms, 2, labels);
  BOOST_TEST(sum.combine_terms(terms, 2) == (std::vector<double>{11, 22, 33, 55}), boost::test_tools::per_element());
  method::ScoreRule z = method::ScoreRule::parse("layer-z", "flip");
  BOOST_TEST(z.tta_flip);
  expect_error([&] { z.combine_terms(terms, 2); }, "not calibrated");
  z.calibrate(terms, 2, labels);
  BOOST_TEST(z.layer_mean == (std::vector<double>{2, 20}), boost::test_tools::per_element());
  BOOST_TEST(z.layer_std == (std::vector<double>{1, 10}), boost::test_tools::per_element());
  const std::vector<double> s = z.combine_terms(terms, 2);
  BOOST_TEST(s == (std::vector<double>{-2, 0, 2, 6}), boost::test_tools::per_element());
  const std::vector<double> e = method::standardise_by_normal({1, 2, 3, 7}, {1, 2, 3});
  BOOST_TEST(e == (std::vector<double>{-1, 0, 1, 5}), boost::test_tools::per_element());
  expect_error([] { method::ScoreRule::parse("max", "none"); }, {"--score", "max"});
  expect_error([] { method::ScoreRule::parse("sum", "rotate"); }, {"--tta", "rotate"});
  expect_error([] { method::standardise_by_normal({1, 2}, {4, 4, 4}); }, "all score the same");
  method::ScoreRule one_normal = method::ScoreRule::parse("layer-z", "none");
  expect_error([&] { one_normal.calibrate(terms, 2, {0, 1, 1, 1}); }, "at least two normal");
}
