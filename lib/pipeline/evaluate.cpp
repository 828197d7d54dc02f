#include "morphokd/pipeline/evaluate.hpp"

#include <cstdio>
#include <filesystem>

#include "morphokd/data/images.hpp"
#include "morphokd/data/mhsma.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/method/metrics.hpp"
#include "morphokd/pipeline/run.hpp"
#include "run_json.hpp"

namespace morphokd::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

json classification_json(const metrics::Classification& m) {
  return {{"accuracy", m.accuracy}, {"precision", m.precision}, {"recall", m.recall}, {"f1", m.f1},
          {"f05", m.f05},           {"gmean", m.gmean},         {"mcc", m.mcc},       {"tp", m.counts.tp},
          {"fp", m.counts.fp},      {"tn", m.counts.tn},        {"fn", m.counts.fn}};
}

void write_text(const std::string& path, const std::string& text) {
  write_file_atomic(path, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

// The validation split the run was trained beside, checked against the hashes in run.json.
data::LabelledCells validation_split(const RunInfo& run, const std::string& data_dir) {
  data::LabelledCells valid = data::load_mhsma(data_dir, "valid", run.config.part);
  for (const std::string& p : {valid.x_path, valid.y_path}) {
    const auto it = run.data_sha256.find(fs::path(p).filename().string());
    if (it != run.data_sha256.end() && it->second != sha256_file(p))
      fail(p + ": differs from the validation data this run was trained with (SHA-256 mismatch)");
  }
  return valid;
}

double threshold_for(const RunInfo& run, Detector& det, const std::string& rule, const std::string& data_dir) {
  const data::LabelledCells valid = validation_split(run, data_dir);
  return metrics::fit_threshold(rule, det.score(valid.cells), valid.labels);
}

}  // namespace

std::string evaluate(const EvalOptions& o) {
  data::check_split(o.split);
  if (o.bootstrap < 100) fail("--bootstrap must be at least 100");
  const RunInfo run = read_run(o.run_dir);
  const std::string data_dir = o.data_dir.empty() ? run.config.data_dir : o.data_dir;
  auto det = open_detector(o.run_dir, run);
  const double threshold = threshold_for(run, *det, o.rule, data_dir);

  const data::LabelledCells split = data::load_mhsma(data_dir, o.split, run.config.part);
  const std::vector<double> scores = det->score(split.cells);
  const std::vector<std::uint8_t>& labels = split.labels;
  const double auc = metrics::roc_auc(scores, labels);  // Errors on a one-class split
  const auto [lo, hi] = metrics::bootstrap_auc_ci(scores, labels, o.bootstrap, 0);
  const auto ab = metrics::classify(metrics::confusion(scores, labels, threshold, true));
  const auto np = metrics::classify(metrics::confusion(scores, labels, threshold, false));

  std::string csv = "index,label,score\n";
  for (std::size_t i = 0; i < scores.size(); ++i)
    csv += std::to_string(i) + "," + std::to_string(labels[i]) + "," + fmt("%.17g", scores[i]) + "\n";
  const json out = {{"part", run.config.part},
                    {"split", o.split},
                    {"n", scores.size()},
                    {"auc", auc},
                    {"auc_ci95", {lo, hi}},
                    {"bootstrap_resamples", o.bootstrap},
                    {"threshold", threshold_to_json(threshold)},
                    {"threshold_rule", o.rule},
                    {"abnormal_positive", classification_json(ab)},
                    {"normal_positive", classification_json(np)},
                    {"data", {{fs::path(split.x_path).filename().string(), sha256_file(split.x_path)},
                              {fs::path(split.y_path).filename().string(), sha256_file(split.y_path)}}},
                    {"student_sha256", run.student_sha256},
                    {"teacher_sha256", run.teacher_sha256}};
  write_text((fs::path(o.run_dir) / ("scores_" + o.split + ".csv")).string(), csv);
  write_json_atomic((fs::path(o.run_dir) / ("eval_" + o.split + ".json")).string(), out);

  std::string t = run.config.part + ", " + o.split + " split, " + std::to_string(scores.size()) + " cells: AUC " +
                  fmt("%.4f", auc) + " (95% CI " + fmt("%.4f", lo) + "-" + fmt("%.4f", hi) + "), threshold " +
                  fmt("%.6g", threshold) + " (" + o.rule + ", fitted on valid)\n";
  t += "convention          accuracy precision recall     f1   f0.5  gmean    mcc    tp    fp    tn    fn\n";
  for (const auto& [name, m] : {std::pair{"abnormal positive", ab}, std::pair{"normal positive", np}}) {
    char row[256];
    std::snprintf(row, sizeof row, "%-18s %9.4f %9.4f %6.4f %6.4f %6.4f %6.4f %6.4f %5lld %5lld %5lld %5lld\n", name,
                  m.accuracy, m.precision, m.recall, m.f1, m.f05, m.gmean, m.mcc, static_cast<long long>(m.counts.tp),
                  static_cast<long long>(m.counts.fp), static_cast<long long>(m.counts.tn), static_cast<long long>(m.counts.fn));
    t += row;
  }
  return t;
}

long score_cells(const ScoreOptions& o) {
  const RunInfo run = read_run(o.run_dir);
  auto det = open_detector(o.run_dir, run);
  Tensor cells;
  std::vector<std::string> names;
  if (fs::is_directory(o.input)) {
    data::ImageFolder folder = data::load_image_folder(o.input);
    cells = folder.cells;
    names = std::move(folder.names);
  } else {
    cells = data::load_cells_npy(o.input);
  }
  const auto it = run.thresholds.find(o.rule);
  const double threshold = it != run.thresholds.end() ? it->second : threshold_for(run, *det, o.rule, run.config.data_dir);
  const std::vector<double> scores = det->score(cells);
  std::string csv = "index,name,score,call\n";
  long abnormal = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const bool call = scores[i] > threshold;
    abnormal += call;
    csv += std::to_string(i) + "," + (names.empty() ? "" : names[i]) + "," + fmt("%.17g", scores[i]) + "," +
           (call ? "abnormal" : "normal") + "\n";
  }
  write_text(o.out, csv);
  return abnormal;
}

}  // namespace morphokd::pipeline
