#include "morphokd/pipeline/run.hpp"

#include <cmath>
#include <limits>
#include <utility>
#include <type_traits>
#include <filesystem>

#include "morphokd/data/augment.hpp"
#include "morphokd/data/mhsma.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/safetensors.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/method/distill.hpp"
#include "morphokd/method/fgsm.hpp"
#include "morphokd/models/students.hpp"
#include "morphokd/runtime.hpp"
#include "run_json.hpp"

namespace morphokd::pipeline {

using nlohmann::json;

json config_to_json(const TrainConfig& c) {
  return {{"part", c.part},
          {"data_dir", c.data_dir},
          {"teacher", c.teacher},
          {"student", c.student},
          {"epochs", c.epochs},
          {"batch", c.batch},
          {"lr", c.lr},
          {"lambda", c.lambda},
          {"train_critical", method::layers_string(c.train_layers)},
          {"score_critical", method::layers_string(c.score_layers)},
          {"seed", c.seed},
          {"augment", c.augment},
          {"input_norm", c.input_norm},
          {"score", c.score},
          {"tta", c.tta},
          {"shuffle", c.shuffle},
          {"steps", c.steps},
          {"student_init", c.student_init},
          {"checkpoint_every", c.checkpoint_every},
          {"valid_every", c.valid_every},
          {"cache_limit_gb", c.cache_limit_gb},
          {"dump_grads", c.dump_grads},
          {"fgsm_eps", c.fgsm_eps},
          {"fgsm_mix", c.fgsm_mix},
          {"precision", c.precision}};
}

void check_config(const TrainConfig& c) {
  data::check_part(c.part);
  models::student_spec(c.student);
  if (c.epochs < 1) fail("--epochs must be at least 1");
  if (c.batch < 2) fail("--batch must be at least 2 (BatchNorm needs batch statistics)");
  if (!(c.lr > 0 && std::isfinite(c.lr))) fail("--lr must be positive and finite");
  if (!(c.lambda >= 0 && std::isfinite(c.lambda))) fail("--lambda must be >= 0 and finite");
  if (c.checkpoint_every < 1) fail("--checkpoint-every must be at least 1");
  if (c.valid_every < 0) fail("--valid-every must be >= 0");
  if (c.steps < 0) fail("--steps must be >= 0");
  if (!(c.cache_limit_gb >= 0 && std::isfinite(c.cache_limit_gb))) fail("--cache-limit-gb must be >= 0 and finite");
  method::check_eps(c.fgsm_eps, "--fgsm-eps");
  if (c.fgsm_mix != "both" && c.fgsm_mix != "adv") fail("--fgsm-mix: unknown " + quote(c.fgsm_mix) + " (expected both or adv)");
  parse_precision(c.precision);
  data::parse_augment(c.augment);
  data::InputTransform::parse(c.input_norm);
  method::ScoreRule::parse(c.score, c.tta);
  check_critical_pools(c.student, c.train_layers, "--train-critical");
  check_critical_pools(c.student, c.score_layers, "--score-critical");
}

void check_runs_here(const TrainConfig& c) {
  if (current_backend() == Backend::onednn) check_precision_hardware(parse_precision(c.precision));
}

namespace {
// j[key] as T, or an Error naming the key: missing, another JSON type, or a number outside T
// (a plain get<T> would truncate integers and cast out-of-range doubles undefinedly).
template <typename T>
T field(const json& j, const char* key) {
  const std::string name = key;
  if (!j.is_object() || !j.contains(key)) fail(name + ": missing");
  const json& v = j.at(key);
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) fail(name + ": expected a string");
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) fail(name + ": expected true or false");
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) fail(name + ": expected an integer");
    const bool fits = v.is_number_unsigned()
                          ? v.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())
                          : std::in_range<T>(v.get<std::int64_t>());
    if (!fits) fail(name + ": " + v.dump() + " is out of range");
  } else {
    if (!v.is_number()) fail(name + ": expected a number");
    if (std::fabs(v.get<double>()) > static_cast<double>(std::numeric_limits<T>::max())) fail(name + ": " + v.dump() + " is out of range");
  }
  return v.get<T>();
}

// As field, with a default for keys older run files lack.
template <typename T>
T field_or(const json& j, const char* key, T fallback) {
  return j.is_object() && j.contains(key) ? field<T>(j, key) : fallback;
}
}  // namespace

TrainConfig config_from_json(const json& j, const std::string& source) {
  TrainConfig c;
  try {
    c.part = field<std::string>(j, "part");
    c.data_dir = field<std::string>(j, "data_dir");
    c.teacher = field<std::string>(j, "teacher");
    c.student = field<std::string>(j, "student");
    c.epochs = field<int>(j, "epochs");
    c.batch = field<Index>(j, "batch");
    c.lr = field<double>(j, "lr");
    c.lambda = field<float>(j, "lambda");
    c.train_layers = method::parse_layers(field<std::string>(j, "train_critical"), "--train-critical");
    c.score_layers = method::parse_layers(field<std::string>(j, "score_critical"), "--score-critical");
    c.seed = field<std::uint64_t>(j, "seed");
    c.augment = field<std::string>(j, "augment");
    c.input_norm = field<std::string>(j, "input_norm");
    c.score = field_or<std::string>(j, "score", "sum");  // runs written before the score rules existed
    c.tta = field_or<std::string>(j, "tta", "none");
    c.shuffle = field<bool>(j, "shuffle");
    c.steps = field<std::int64_t>(j, "steps");
    c.student_init = field<std::string>(j, "student_init");
    c.checkpoint_every = field<int>(j, "checkpoint_every");
    c.valid_every = field_or<int>(j, "valid_every", 1);  // runs written before it
    c.cache_limit_gb = field<double>(j, "cache_limit_gb");
    c.dump_grads = field_or<bool>(j, "dump_grads", false);
    c.fgsm_eps = field_or<double>(j, "fgsm_eps", 0.0);  // runs written before adversarial training existed
    c.fgsm_mix = field_or<std::string>(j, "fgsm_mix", "both");
    c.precision = field_or<std::string>(j, "precision", "fp32");  // runs written before bf16
    check_config(c);
  } catch (const Error& e) {
    fail(source + ": bad configuration: " + e.what());
  }
  return c;
}

void write_json_atomic(const std::string& path, const json& j) {
  const std::string text = j.dump(2) + "\n";
  write_file_atomic(path, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

json parse_json_object(std::span<const std::byte> bytes, const std::string& name) {
  const auto* p = reinterpret_cast<const char*>(bytes.data());
  json j = json::parse(p, p + bytes.size(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(name + ": not a JSON object");
  return j;
}

json read_json(const std::string& path) { return parse_json_object(read_file(path), path); }

json threshold_to_json(double t) { return std::isfinite(t) ? json(t) : json(t < 0 ? "-inf" : "inf"); }

double threshold_from_json(const json& j) {
  if (!j.is_string()) return j.get<double>();
  const std::string s = j.get<std::string>();
  if (s != "-inf" && s != "inf") fail("threshold " + quote(s) + " is neither a number nor -inf/inf");
  return s == "-inf" ? -HUGE_VAL : HUGE_VAL;
}

namespace {
// RUN/run.json's path, checked to exist.
std::string run_json_path(const std::string& run_dir) {
  std::string path = (std::filesystem::path(run_dir) / "run.json").string();
  if (!std::filesystem::exists(path)) fail(run_dir + ": not a run directory (no run.json)");
  return path;
}
}  // namespace

TrainConfig read_run_config(const std::string& run_dir) {
  const std::string path = run_json_path(run_dir);
  const json j = read_json(path);
  if (!j.contains("config")) fail(path + ": no configuration");
  return config_from_json(j.at("config"), path);
}

RunInfo read_run(const std::string& run_dir) {
  const std::string path = run_json_path(run_dir);
  return parse_run(read_file(path), path);
}

RunInfo parse_run(std::span<const std::byte> bytes, const std::string& path) {
  const json j = parse_json_object(bytes, path);
  try {
    if (j.value("format", "") != "morphokd-run") fail(path + ": not a morphokd run file");
    const int version = field<int>(j, "format_version");
    if (version < 1) fail(path + ": format version " + std::to_string(version) + " is not a morphokd run format");
    if (version > kRunFormatVersion)
      fail(path + ": format version " + std::to_string(version) + " is newer than this morphokd reads (" +
           std::to_string(kRunFormatVersion) + "); upgrade morphokd");
    if (j.value("status", "") != "done") fail(path + ": training did not finish (status " + quote(j.value("status", "")) + "); resume it with --resume");
    RunInfo r;
    r.config = config_from_json(j.at("config"), path);
    r.input = data::InputTransform::parse(j.at("input_norm").at("kind").get<std::string>());
    r.input.mean = j.at("input_norm").at("mean").get<double>();
    r.input.std = j.at("input_norm").at("std").get<double>();
    if (!std::isfinite(r.input.mean) || !(r.input.std > 0 && std::isfinite(r.input.std)))
      fail(path + ": input_norm mean/std must be finite with std > 0");
    r.rule = method::ScoreRule::parse(r.config.score, r.config.tta);
    if (j.contains("score_rule")) {
      r.rule.layer_mean = j.at("score_rule").at("layer_mean").get<std::vector<double>>();
      r.rule.layer_std = j.at("score_rule").at("layer_std").get<std::vector<double>>();
      // Empty for rules that need no calibration; else one finite mean and positive std per layer.
      const std::size_t layers = r.rule.layer_mean.empty() ? 0 : r.config.score_layers.size();
      bool ok = r.rule.layer_mean.size() == layers && r.rule.layer_std.size() == layers;
      for (std::size_t c = 0; ok && c < layers; ++c)
        ok = std::isfinite(r.rule.layer_mean[c]) && r.rule.layer_std[c] > 0 && std::isfinite(r.rule.layer_std[c]);
      if (!ok) fail(path + ": score_rule needs one finite mean and positive std per score layer");
    }
    r.teacher_sha256 = j.at("teacher").at("sha256").get<std::string>();
    r.student_sha256 = j.at("student").at("sha256").get<std::string>();
    for (auto& [rule, t] : j.at("thresholds").items()) r.thresholds[rule] = threshold_from_json(t);
    for (auto& [file, h] : j.at("data").items()) r.data_sha256[file] = h.at("sha256").get<std::string>();
    return r;
  } catch (const json::exception& e) {
    fail(path + ": malformed run file: " + e.what());
  } catch (const Error& e) {
    const std::string what = e.what();
    fail(what.starts_with(path) ? what : path + ": " + what);
  }
}

std::unique_ptr<Detector> open_detector(const std::string& run_dir, const RunInfo& run, int teacher_channels) {
  check_runs_here(run.config);
  models::Teacher teacher = models::open_teacher(run.config.teacher, teacher_channels ? teacher_channels : run.input.channels());
  if (teacher.sha256 != run.teacher_sha256)
    fail(run.config.teacher + ": teacher weights differ from the ones this run was trained with (SHA-256 mismatch)");
  const std::string student_path = (std::filesystem::path(run_dir) / "student.safetensors").string();
  if (!std::filesystem::exists(student_path)) fail(run_dir + ": run directory has no student.safetensors");
  const auto bytes = read_file(student_path);
  if (sha256_hex(bytes) != run.student_sha256) fail(student_path + ": SHA-256 differs from run.json (file changed or corrupt)");
  const models::VggSpec& spec = models::student_spec(run.config.student);
  auto student = models::vgg_features(spec, 3);
  student->load_state_dict(parse_safetensors(bytes, student_path), student_path);
  method::DistillConfig distill{run.config.train_layers, run.config.score_layers, run.config.lambda};
  auto det = std::make_unique<Detector>(std::move(teacher), std::move(student), spec, distill, run.input, run.rule);
  det->set_teacher_precision(parse_precision(run.config.precision));
  return det;
}

}  // namespace morphokd::pipeline
