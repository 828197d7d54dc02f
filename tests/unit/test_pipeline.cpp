// The detector's pieces: the gray teacher fold, the distillation loss and score, input
// transforms, the MHSMA loader's checks, student shapes, counter-based permutations.
#define BOOST_TEST_MODULE pipeline
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>

#include "support.hpp"
#include "morphokd/data/mhsma.hpp"
#include "morphokd/data/transform.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/npy.hpp"
#include "morphokd/method/distill.hpp"
#include "morphokd/models/students.hpp"
#include "morphokd/models/teacher.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/pipeline/run.hpp"
#include "pipeline/run_json.hpp"
#include "morphokd/random.hpp"

using namespace morphokd;
namespace fs = std::filesystem;

namespace {
Tensor random_tensor(const Shape& s, std::uint64_t seed, double lo = -1, double hi = 1) {
  Tensor t = Tensor::empty(s);
  for (Index i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(lo + (hi - lo) * uniform01(seed, i));
  return t;
}

using test::expect_error;

// A uint8 .npy with the given shape and bytes.
void write_u8_npy(const std::string& path, std::vector<Index> shape, const std::vector<std::uint8_t>& v) {
  std::string dims;
  for (Index d : shape) dims += std::to_string(d) + ",";
  std::string h = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + dims + "), }";
  h.append(63 - (10 + h.size()) % 64 + 1 - 1, ' ');
  h += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8) + char(h.size() & 0xff) + char(h.size() >> 8) + h;
  out.append(reinterpret_cast<const char*>(v.data()), v.size());
  write_file_atomic(path, std::as_bytes(std::span(out.data(), out.size())));
}
}  // namespace

// Folding the teacher's first conv to one input channel is the same function on gray input.
BOOST_AUTO_TEST_CASE(gray_teacher_equals_rgb_teacher_on_gray_cells) {
  auto rgb = models::open_vgg16_teacher("random:3");
  models::Teacher gray = models::open_teacher("random:3");
  const Tensor g = random_tensor({2, 1, 64, 64}, 5, 0, 1);
  Tensor x = Tensor::empty({2, 3, 64, 64});
  for (Index n = 0; n < 2; ++n)
    for (Index c = 0; c < 3; ++c) std::memcpy(x.data() + (n * 3 + c) * 4096, g.data() + n * 4096, 4 * 4096);
  rgb->forward(x);
  gray.net->forward(g);
  for (int k : models::kVgg16PoolIndices) {
    const double rel = test::checked_rel_error(gray.net->output(static_cast<std::size_t>(k)), rgb->output(static_cast<std::size_t>(k)));
    BOOST_TEST(rel <= 1e-5, "pool at " << k << ": rel " << rel);
  }
  BOOST_TEST(gray.sha256 == models::open_teacher("random:3").sha256);  // reproducible identity
  BOOST_TEST(gray.sha256 != models::open_teacher("random:4").sha256);
  expect_error([] { models::open_teacher("random:x"); }, "random:SEED");
  expect_error([] { models::open_teacher("weights.bin"); }, "is not random:SEED, a .safetensors or an .onnx file");
}

// The fused loss: value against a direct computation and gradient against central
// differences in float (step 1e-2 on O(1) maps: truncation ~1e-4, hence tolerance 2e-3).
BOOST_AUTO_TEST_CASE(distill_loss_value_and_gradient) {
  const std::vector<Shape> shapes{{3, 4, 2, 2}, {3, 8, 1, 1}};
  std::vector<Tensor> s, t;
  method::DistanceGrads grads;
  for (std::size_t c = 0; c < shapes.size(); ++c) {
    s.push_back(random_tensor(shapes[c], 10 + c));
    t.push_back(random_tensor(shapes[c], 20 + c));
  }
  const float lambda = 0.3f;
  const method::LossTerms terms = method::distill_loss(s, t, lambda, grads);
  const std::vector<Tensor>& ds = grads.ds;
  double dir = 0, val = 0;
  for (std::size_t c = 0; c < s.size(); ++c)
    for (Index b = 0; b < 3; ++b) {
      const Index d = s[c].numel() / 3;
      double ab = 0, aa = 0, bb = 0, se = 0;
      for (Index j = 0; j < d; ++j) {
        const double u = s[c].data()[b * d + j], v = t[c].data()[b * d + j];
        ab += u * v, aa += u * u, bb += v * v, se += (u - v) * (u - v);
      }
      dir += (1 - ab / std::sqrt(aa * bb)) / 3;
      val += se / static_cast<double>(d) / 3;
    }
  BOOST_TEST(std::fabs(terms.direction - dir) <= 1e-6);
  BOOST_TEST(std::fabs(terms.value - val) <= 1e-6);
  BOOST_TEST(std::fabs(terms.total - (dir + lambda * val)) <= 1e-6);
  // Buffers planned by the first call: a second call with the same shapes writes into them.
  method::DistanceGrads scratch;
  method::distill_loss(s, t, lambda, scratch);
  const float* planned[] = {scratch.ds[0].data(), scratch.ds[1].data(), scratch.dcos.data()};
  method::distill_loss(s, t, lambda, scratch);
  BOOST_TEST((planned[0] == scratch.ds[0].data() && planned[1] == scratch.ds[1].data() && planned[2] == scratch.dcos.data()));
  for (std::size_t c = 0; c < s.size(); ++c)
    for (Index i = 0; i < s[c].numel(); i += 3) {
      const float keep = s[c].data()[i];
      s[c].data()[i] = keep + 1e-2f;
      const double lp = method::distill_loss(s, t, lambda, scratch).total;
      s[c].data()[i] = keep - 1e-2f;
      const double lm = method::distill_loss(s, t, lambda, scratch).total;
      s[c].data()[i] = keep;
      const double numeric = (lp - lm) / 2e-2;
      BOOST_TEST(std::fabs(numeric - ds[c].data()[i]) <= 2e-3 * std::max(1.0, std::fabs(numeric)),
                 "map " << c << " element " << i << ": " << ds[c].data()[i] << " vs " << numeric);
    }
  // Scores: per image the same terms without the batch mean; per-layer rows add up.
  std::vector<double> scores(3), rows;
  method::anomaly_scores(s, t, lambda, scores, &rows);
  double mean = 0;
  for (Index b = 0; b < 3; ++b) {
    BOOST_TEST(std::fabs(rows[2 * b] + rows[2 * b + 1] - scores[b]) <= 1e-12);
    mean += scores[b] / 3;
  }
  BOOST_TEST(std::fabs(mean - terms.total) <= 1e-6);
}

BOOST_AUTO_TEST_CASE(critical_layer_parsing) {
  BOOST_TEST(method::parse_layers("2,3,4,5", "--x") == std::vector<int>({2, 3, 4, 5}));
  BOOST_TEST(method::layers_string({3, 5}) == "3,5");
  expect_error([] { method::parse_layers("3,2", "--train-critical"); }, "--train-critical: pools must be distinct and ascending");
  expect_error([] { method::parse_layers("6", "--score-critical"); }, "--score-critical: '6' is not a pool number 1..5");
  expect_error([] { method::parse_layers("", "--x"); }, "no critical layers");
}

// Every student's pools 2..5 have the teacher's channels and size (METHOD.md), so the maps
// can be compared; pool 1 of A and B is narrower, and training refuses it (test_train_cli).
BOOST_AUTO_TEST_CASE(students_line_up_with_the_teacher) {
  auto teacher = models::vgg16_features();
  for (const char* name : {"A", "B", "C"}) {
    const models::VggSpec& spec = models::student_spec(name);
    auto net = models::vgg_features(spec, 3);
    for (int k = 1; k <= 5; ++k) {
      const Shape s = net->output_shape({2, 3, 64, 64}, models::pool_index(spec, k));
      const Shape t = teacher->output_shape({2, 3, 64, 64}, models::pool_index(models::vgg16_spec(), k));
      if (k >= 2) BOOST_TEST(s == t, "student " << name << " pool " << k);
      // The shape-free check run files and options use agrees with the built networks.
      BOOST_TEST(models::pool_channels(spec, k) == s.dims()[1]);
      BOOST_TEST(models::pool_channels(models::vgg16_spec(), k) == t.dims()[1]);
      BOOST_TEST(s.dims()[2] == 64 >> k);
    }
    for (auto& [pname, p] : net->named_parameters())
      if (p->value.rank() == 1) BOOST_TEST(pname.find("features.") == 0u);
  }
  Index conv = 0;
  const auto b = models::vgg_features(models::student_spec("B"), 3);  // alive while its parameters are read
  for (auto& [pname, p] : b->named_parameters())
    if (p->value.rank() == 4) conv += p->value.numel();
  BOOST_TEST(conv == 343728);  // METHOD.md
  expect_error([] { models::student_spec("D"); }, "--student: unknown student 'D'");
}

// run.json as eval, score and verify read it: a valid file, then one rule broken at a time.
BOOST_AUTO_TEST_CASE(run_file_rules) {
  const nlohmann::json valid = {
      {"format", "morphokd-run"}, {"format_version", 1}, {"status", "done"},
      {"config", pipeline::config_to_json(pipeline::TrainConfig{})},
      {"input_norm", {{"kind", "image"}, {"mean", 0.0}, {"std", 1.0}}},
      {"score_rule", {{"layer_mean", {1, 2, 3, 4}}, {"layer_std", {1, 1, 2, 2}}}},
      {"teacher", {{"sha256", std::string(64, 'a')}}}, {"student", {{"sha256", std::string(64, 'b')}}},
      {"thresholds", {{"f1", 0.5}, {"youden", "-inf"}}}, {"data", nlohmann::json::object()}};
  const auto parse = [](const nlohmann::json& j) {
    const std::string text = j.dump();
    return pipeline::parse_run(std::as_bytes(std::span<const char>(text.data(), text.size())), "r/run.json");
  };
  const pipeline::RunInfo ok = parse(valid);
  BOOST_TEST(ok.rule.layer_std.size() == 4u);
  BOOST_TEST(ok.thresholds.at("youden") == -HUGE_VAL);
  const auto broken = [&](const char* pointer, const nlohmann::json& value, std::initializer_list<std::string> words) {
    nlohmann::json j = valid;
    j[nlohmann::json::json_pointer(pointer)] = value;
    expect_error([&] { parse(j); }, words);
  };
  broken("/format_version", 2, {"r/run.json: format version 2 is newer than this morphokd reads (1)"});
  broken("/format_version", 0, {"r/run.json: format version 0 is not a morphokd run format"});
  broken("/status", "running", {"r/run.json: training did not finish (status 'running')"});
  broken("/config/epochs", 0, {"r/run.json: bad configuration: --epochs must be at least 1"});
  broken("/config/part", "neck\n", {"r/run.json: bad configuration: --part: unknown part 'neck\\x0a'"});
  broken("/config/train_critical", "1,2", {"r/run.json: bad configuration: --train-critical: pool 1 of student B has 16 channels"});
  broken("/config/lr", "fast", {"r/run.json: bad configuration:", "lr"});
  broken("/input_norm/std", 0.0, {"r/run.json: input_norm mean/std must be finite with std > 0"});
  broken("/score_rule/layer_std", {1, 1, 0, 2}, {"r/run.json: score_rule needs one finite mean and positive std per score layer"});
  broken("/score_rule/layer_mean", {1, 2}, {"r/run.json: score_rule needs one finite mean and positive std per score layer"});
  broken("/thresholds/f1", "high", {"r/run.json: threshold 'high' is neither a number nor -inf/inf"});
  broken("/teacher", "x", {"r/run.json: malformed run file"});
  const std::string garbage = "{\"format\": ";
  expect_error([&] { pipeline::parse_run(std::as_bytes(std::span<const char>(garbage.data(), garbage.size())), "g.json"); },
               {"g.json: not a JSON object"});
}

BOOST_AUTO_TEST_CASE(permutations_are_counter_based) {
  const auto p = permutation(100, 7);
  std::vector<std::int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t i = 0; i < 100; ++i) BOOST_TEST(sorted[static_cast<std::size_t>(i)] == i);
  BOOST_TEST((permutation(100, 7) == p));
  BOOST_TEST((permutation(100, 8) != p));
}

BOOST_AUTO_TEST_CASE(input_transforms) {
  Tensor train = random_tensor({4, 1, 8, 8}, 3, 0.4, 0.6);
  Tensor x = random_tensor({2, 1, 8, 8}, 4, 0.4, 0.6);
  Tensor img = x.clone();
  data::InputTransform::make("image", train).apply(img);
  for (Index n = 0; n < 2; ++n) {
    double s = 0, q = 0;
    for (Index j = 0; j < 64; ++j) s += img.data()[n * 64 + j];
    for (Index j = 0; j < 64; ++j) q += std::pow(img.data()[n * 64 + j] - s / 64, 2);
    BOOST_TEST(std::fabs(s / 64) <= 1e-6);
    BOOST_TEST(std::fabs(std::sqrt(q / 64) - 1) <= 1e-5);
  }
  const auto ds = data::InputTransform::make("dataset", train);
  BOOST_TEST(std::fabs(ds.mean - 0.5) <= 0.02);
  Tensor y = x.clone();
  ds.apply(y);
  BOOST_TEST(std::fabs(y.data()[5] - (x.data()[5] - ds.mean) / ds.std) <= 1e-5);
  Tensor z = x.clone();
  data::InputTransform::make("none", train).apply(z);
  BOOST_TEST(std::memcmp(z.data(), x.data(), 4 * 128) == 0);
  expect_error([&] { data::InputTransform::make("imagenet2", train); }, "--input-norm: unknown 'imagenet2'");
}

BOOST_AUTO_TEST_CASE(mhsma_loader_rejects_bad_files) {
  const fs::path dir = fs::temp_directory_path() / ("morphokd-mhsma-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::vector<std::uint8_t> pixels(3 * 4096, 128);
  write_u8_npy((dir / "x_64_train.npy").string(), {3, 64, 64}, pixels);
  write_u8_npy((dir / "y_head_train.npy").string(), {3}, {0, 1, 0});
  const auto ok = data::load_mhsma(dir.string(), "train", "head");
  BOOST_TEST(ok.cells.shape() == Shape({3, 1, 64, 64}));
  BOOST_TEST(ok.cells.data()[0] == 128.0f / 255.0f);
  BOOST_TEST(data::rows_with_label(ok.labels, 0) == std::vector<std::int64_t>({0, 2}));
  write_u8_npy((dir / "y_head_train.npy").string(), {3}, {0, 2, 0});
  expect_error([&] { data::load_mhsma(dir.string(), "train", "head"); }, "y_head_train.npy: label 2 at row 1");
  write_u8_npy((dir / "y_head_train.npy").string(), {2}, {0, 1});
  expect_error([&] { data::load_mhsma(dir.string(), "train", "head"); }, "y_head_train.npy: 2 labels for 3 images");
  write_u8_npy((dir / "x_64_train.npy").string(), {3, 32, 32}, std::vector<std::uint8_t>(3 * 1024));
  expect_error([&] { data::load_mhsma(dir.string(), "train", "head"); }, "x_64_train.npy: cells must be 64 x 64");
  expect_error([&] { data::load_mhsma(dir.string(), "train", "neck"); }, "--part: unknown part 'neck'");
  expect_error([&] { data::load_mhsma(dir.string(), "dev", "head"); }, "--split: unknown split 'dev'");
  expect_error([&] { data::load_mhsma((dir / "none").string(), "train", "head"); }, "no such data folder");
  // Cells to score: float outside [0, 1] and NaN are refused.
  Tensor f = Tensor::full({1, 64, 64}, 0.5f);
  f.data()[7] = 1.5f;
  write_npy((dir / "f.npy").string(), f);
  expect_error([&] { data::load_cells_npy((dir / "f.npy").string()); }, "outside [0, 1] at flat index 7");
  f.data()[7] = NAN;
  write_npy((dir / "f.npy").string(), f);
  expect_error([&] { data::load_cells_npy((dir / "f.npy").string()); }, "non-finite pixel");
  fs::remove_all(dir);
}
