#include "morphokd/pipeline/run.hpp"

#include <cmath>
#include <filesystem>

#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/safetensors.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/method/distill.hpp"
#include "morphokd/models/students.hpp"
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
          {"cache_limit_gb", c.cache_limit_gb},
          {"dump_grads", c.dump_grads},
          {"fgsm_eps", c.fgsm_eps},
          {"fgsm_mix", c.fgsm_mix}};
}

TrainConfig config_from_json(const json& j, const std::string& source) {
  try {
    TrainConfig c;
    c.part = j.at("part").get<std::string>();
    c.data_dir = j.at("data_dir").get<std::string>();
    c.teacher = j.at("teacher").get<std::string>();
    c.student = j.at("student").get<std::string>();
    c.epochs = j.at("epochs").get<int>();
    c.batch = j.at("batch").get<Index>();
    c.lr = j.at("lr").get<double>();
    c.lambda = j.at("lambda").get<float>();
    c.train_layers = method::parse_layers(j.at("train_critical").get<std::string>(), source + ": train_critical");
    c.score_layers = method::parse_layers(j.at("score_critical").get<std::string>(), source + ": score_critical");
    c.seed = j.at("seed").get<std::uint64_t>();
    c.augment = j.at("augment").get<std::string>();
    c.input_norm = j.at("input_norm").get<std::string>();
    c.score = j.value("score", "sum");  // runs written before the score rules existed
    c.tta = j.value("tta", "none");
    c.shuffle = j.at("shuffle").get<bool>();
    c.steps = j.at("steps").get<std::int64_t>();
    c.student_init = j.at("student_init").get<std::string>();
    c.checkpoint_every = j.at("checkpoint_every").get<int>();
    c.cache_limit_gb = j.at("cache_limit_gb").get<double>();
    c.dump_grads = j.value("dump_grads", false);
    c.fgsm_eps = j.value("fgsm_eps", 0.0);  // runs written before adversarial training existed
    c.fgsm_mix = j.value("fgsm_mix", "both");
    return c;
  } catch (const json::exception& e) {
    fail(source + ": bad configuration: " + e.what());
  }
}

void write_json_atomic(const std::string& path, const json& j) {
  const std::string text = j.dump(2) + "\n";
  write_file_atomic(path, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

json read_json(const std::string& path) {
  const auto bytes = read_file(path);
  const auto* p = reinterpret_cast<const char*>(bytes.data());
  json j = json::parse(p, p + bytes.size(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(path + ": not a JSON object");
  return j;
}

json threshold_to_json(double t) { return std::isfinite(t) ? json(t) : json(t < 0 ? "-inf" : "inf"); }

double threshold_from_json(const json& j) {
  if (j.is_string()) return j.get<std::string>() == "-inf" ? -HUGE_VAL : HUGE_VAL;
  return j.get<double>();
}

namespace {
// RUN/run.json parsed, and its path for error messages.
std::pair<json, std::string> run_json(const std::string& run_dir) {
  std::string path = (std::filesystem::path(run_dir) / "run.json").string();
  if (!std::filesystem::exists(path)) fail(run_dir + ": not a run directory (no run.json)");
  return {read_json(path), path};
}
}  // namespace

TrainConfig read_run_config(const std::string& run_dir) {
  const auto [j, path] = run_json(run_dir);
  if (!j.contains("config")) fail(path + ": no configuration");
  return config_from_json(j.at("config"), path);
}

RunInfo read_run(const std::string& run_dir) {
  const auto [j, path] = run_json(run_dir);
  try {
    if (j.value("format", "") != "morphokd-run") fail(path + ": not a morphokd run file");
    const int version = j.at("format_version").get<int>();
    if (version > kRunFormatVersion)
      fail(path + ": format version " + std::to_string(version) + " is newer than this morphokd reads (" +
           std::to_string(kRunFormatVersion) + "); upgrade morphokd");
    if (j.value("status", "") != "done") fail(path + ": training did not finish (status '" + j.value("status", "") + "'); resume it with --resume");
    RunInfo r;
    r.config = config_from_json(j.at("config"), path);
    r.input = data::InputTransform::parse(j.at("input_norm").at("kind").get<std::string>());
    r.input.mean = j.at("input_norm").at("mean").get<double>();
    r.input.std = j.at("input_norm").at("std").get<double>();
    r.rule = method::ScoreRule::parse(r.config.score, r.config.tta);
    if (j.contains("score_rule")) {
      r.rule.layer_mean = j.at("score_rule").at("layer_mean").get<std::vector<double>>();
      r.rule.layer_std = j.at("score_rule").at("layer_std").get<std::vector<double>>();
    }
    r.teacher_sha256 = j.at("teacher").at("sha256").get<std::string>();
    r.student_sha256 = j.at("student").at("sha256").get<std::string>();
    for (auto& [rule, t] : j.at("thresholds").items()) r.thresholds[rule] = threshold_from_json(t);
    for (auto& [file, h] : j.at("data").items()) r.data_sha256[file] = h.at("sha256").get<std::string>();
    return r;
  } catch (const json::exception& e) {
    fail(path + ": malformed run file: " + e.what());
  }
}

std::unique_ptr<Detector> open_detector(const std::string& run_dir, const RunInfo& run, int teacher_channels) {
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
  return std::make_unique<Detector>(std::move(teacher), std::move(student), spec, distill, run.input, run.rule);
}

}  // namespace morphokd::pipeline
