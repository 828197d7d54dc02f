#include "morphokd/pipeline/audit.hpp"

#include <filesystem>

#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/ops/ops.hpp"
#include "morphokd/runtime.hpp"
#include "run_json.hpp"

namespace morphokd::pipeline {

using nlohmann::json;

void write_audit(const std::string& file, const AuditContext& context, const RunInfo& run,
                 const method::ScoreRule& rule, const Tensor& cells,
                 std::span<const std::string> names, std::span<const std::uint8_t> labels,
                 std::span<const double> terms, std::span<const double> scores) {
  const std::size_t n = scores.size(), nl = run.config.score_layers.size();
  check(static_cast<std::size_t>(cells.dim(0)) == n && terms.size() == n * nl, "audit: cells, terms and scores disagree");
  // An image folder's hash is its files' hashes; an .npy file's is the file's.
  const std::string input_sha256 = std::filesystem::is_directory(context.input_file) ? "" : sha256_file(context.input_file);
  const json shared = {{"morphokd", version_string()},
                       {"build", build_info()},
                       {"command", context.command},
                       {"backend", backend_name(current_backend())},
                       {"threads", num_threads()},
                       {"deterministic", deterministic()},
                       {"onednn_fpmath", ops::onednn_fpmath_mode()},
                       {"teacher", {{"spec", run.config.teacher}, {"sha256", run.teacher_sha256}}},
                       {"student_sha256", run.student_sha256},
                       {"score_rule", {{"combine", rule.combine}, {"tta", rule.tta()}, {"pools", run.config.score_layers},
                                       {"layer_mean", rule.layer_mean}, {"layer_std", rule.layer_std}}},
                       {"threshold_rule", context.threshold_rule},
                       {"threshold", threshold_to_json(context.threshold)}};
  const Index per = cells.numel() / std::max<Index>(1, cells.dim(0));
  std::string text;
  for (std::size_t i = 0; i < n; ++i) {
    json line = shared;
    const auto* cell = reinterpret_cast<const std::byte*>(cells.data() + static_cast<Index>(i) * per);
    json input = {{"file", context.input_file}, {"index", i},
                  {"cell_sha256", sha256_hex({cell, static_cast<std::size_t>(per) * sizeof(float)})}};
    if (!input_sha256.empty()) input["sha256"] = input_sha256;
    if (!names.empty()) {
      input["name"] = names[i];
      input["sha256"] = sha256_file((std::filesystem::path(context.input_file) / names[i]).string());
    }
    if (!labels.empty()) input["label"] = labels[i];
    line["input"] = input;
    json t = json::object();
    for (std::size_t c = 0; c < nl; ++c) t["pool" + std::to_string(run.config.score_layers[c])] = terms[i * nl + c];
    line["terms"] = t;
    line["score"] = scores[i];
    line["call"] = scores[i] > context.threshold ? "abnormal" : "normal";
    text += line.dump() + "\n";
  }
  write_file_atomic(file, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

}  // namespace morphokd::pipeline
