#include "morphokd/pipeline/evaluate.hpp"

#include <cstdio>
#include <filesystem>

#include "morphokd/data/images.hpp"
#include "morphokd/data/mhsma.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/method/metrics.hpp"
#include "morphokd/parallel.hpp"
#include "morphokd/pipeline/adversarial.hpp"
#include "morphokd/pipeline/audit.hpp"
#include "morphokd/pipeline/figures.hpp"
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

// The run with eval's overrides of its score rule and score pools applied.
RunInfo with_overrides(RunInfo run, const EvalOptions& o) {
  if (!o.score_critical.empty()) {
    run.config.score_layers = method::parse_layers(o.score_critical, "--score-critical");
    check_critical_pools(run.config.student, run.config.score_layers, "--score-critical");
  }
  if (!o.score.empty()) run.config.score = o.score;
  if (!o.tta.empty()) run.config.tta = o.tta;
  run.rule = method::ScoreRule::parse(run.config.score, run.config.tta);  // calibrated below, on valid
  return run;
}

// A run's scores of the validation split and of `cells`, by its score rule calibrated on
// the validation split; `terms`: the cells' per-layer terms.
struct MemberScores {
  std::vector<double> valid, cells, terms;
  std::vector<std::pair<double, double>> robustness;  // {eps, auc}
  method::ScoreRule rule;  // calibrated on valid
};

MemberScores member_scores(const std::string& run_dir, const RunInfo& run, const EvalOptions& o,
                           const data::LabelledCells& valid, const data::LabelledCells& split) {
  const Tensor& cells = split.cells;
  auto det = open_detector(run_dir, run);
  const std::size_t layers = run.config.score_layers.size();
  const std::vector<double> valid_terms = det->layer_terms(valid.cells, det->rule().tta_flip);
  det->rule().calibrate(valid_terms, layers, valid.labels);
  // Evaluating the validation split itself: its terms are already at hand.
  MemberScores m{det->rule().combine_terms(valid_terms, layers), {},
                 o.split == "valid" ? valid_terms : det->layer_terms(cells, det->rule().tta_flip), {}, {}};
  m.cells = det->rule().combine_terms(m.terms, layers);
  m.rule = det->rule();
  if (!o.robustness.empty()) m.robustness = robustness_curve(*det, cells, split.labels, parse_eps_list(o.robustness));
  return m;
}

std::vector<double> normal_only(const std::vector<double>& scores, const std::vector<std::uint8_t>& labels) {
  std::vector<double> n;
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (labels[i] == 0) n.push_back(scores[i]);
  return n;
}

}  // namespace

std::string evaluate(const EvalOptions& o) {
  data::check_split(o.split);
  if (o.bootstrap < 100) fail("--bootstrap must be at least 100");
  if (o.run_dirs.empty()) fail("eval: no run given");
  if (o.run_dirs.size() > 1 && o.out.empty()) fail("eval: an ensemble of runs needs --out");
  if (!o.audit.empty() && o.run_dirs.size() > 1) fail("--audit: records one run's decisions, not an ensemble's");
  if (!o.robustness.empty()) {
    if (o.run_dirs.size() > 1) fail("--robustness: attacks one run at a time, not an ensemble");
    parse_eps_list(o.robustness);  // bad values fail before any work
  }
  const RunInfo run = with_overrides(read_run(o.run_dirs[0]), o);
  const std::string data_dir = o.data_dir.empty() ? run.config.data_dir : o.data_dir;
  const data::LabelledCells valid = validation_split(run, data_dir);
  const data::LabelledCells split = data::load_mhsma(data_dir, o.split, run.config.part);
  const std::vector<std::uint8_t>& labels = split.labels;

  MemberScores total;
  const double members = static_cast<double>(o.run_dirs.size());
  for (const std::string& dir : o.run_dirs) {
    const RunInfo member = dir == o.run_dirs[0] ? run : with_overrides(read_run(dir), o);
    if (member.config.part != run.config.part)
      fail(dir + ": part " + quote(member.config.part) + " differs from the ensemble's " + quote(run.config.part) + "");
    MemberScores m = member_scores(dir, member, o, valid, split);
    if (members == 1) {
      total = std::move(m);
      break;
    }
    const std::vector<double> reference = normal_only(m.valid, valid.labels);
    m.valid = method::standardise_by_normal(m.valid, reference);
    m.cells = method::standardise_by_normal(m.cells, reference);
    total.valid.resize(m.valid.size(), 0.0);
    total.cells.resize(m.cells.size(), 0.0);
    for (std::size_t i = 0; i < m.valid.size(); ++i) total.valid[i] += m.valid[i] / members;
    for (std::size_t i = 0; i < m.cells.size(); ++i) total.cells[i] += m.cells[i] / members;
  }
  const std::vector<double>& scores = total.cells;
  const double threshold = metrics::fit_threshold(o.rule, total.valid, valid.labels);
  const double auc = metrics::roc_auc(scores, labels);  // Errors on a one-class split
  const auto [lo, hi] = metrics::bootstrap_auc_ci(scores, labels, o.bootstrap, 0);
  const auto ab = metrics::classify(metrics::confusion(scores, labels, threshold, true));
  const auto np = metrics::classify(metrics::confusion(scores, labels, threshold, false));

  // One run: each score layer's distance term too (the paper's Fig. 5 distance vectors).
  const std::vector<int>& layers = run.config.score_layers;
  const bool with_terms = members == 1;
  std::string csv = "index,label,score";
  if (with_terms)
    for (int k : layers) csv += ",term_pool" + std::to_string(k);
  csv += "\n";
  for (std::size_t i = 0; i < scores.size(); ++i) {
    csv += std::to_string(i) + "," + std::to_string(labels[i]) + "," + fmt("%.17g", scores[i]);
    if (with_terms)
      for (std::size_t c = 0; c < layers.size(); ++c) csv.append(",").append(fmt("%.17g", total.terms[i * layers.size() + c]));
    csv += "\n";
  }
  const std::string &score_name = run.config.score, &tta = run.config.tta;
  json out = {{"part", run.config.part},
                    {"split", o.split},
                    {"n", scores.size()},
                    {"auc", auc},
                    {"auc_ci95", {lo, hi}},
                    {"bootstrap_resamples", o.bootstrap},
                    {"threshold", threshold_to_json(threshold)},
                    {"threshold_rule", o.rule},
                    {"score", score_name},
                    {"tta", tta},
                    {"score_critical", method::layers_string(layers)},
                    {"runs", o.run_dirs},
                    {"abnormal_positive", classification_json(ab)},
                    {"normal_positive", classification_json(np)},
                    {"data", {{fs::path(split.x_path).filename().string(), sha256_file(split.x_path)},
                              {fs::path(split.y_path).filename().string(), sha256_file(split.y_path)}}},
                    {"scores_csv", {{"file", "scores_" + o.split + ".csv"}, {"sha256", sha256_hex(std::as_bytes(std::span(csv.data(), csv.size())))}}},
                    {"student_sha256", run.student_sha256},
                    {"teacher_sha256", run.teacher_sha256}};
  const fs::path dir = o.out.empty() ? fs::path(o.run_dirs[0]) : fs::path(o.out);
  fs::create_directories(dir);
  std::string robust_text;
  if (!total.robustness.empty()) {
    std::vector<double> eps, aucs;
    out["robustness"] = json::array();
    for (const auto& [e, a] : total.robustness) {
      out["robustness"].push_back({{"eps", e}, {"auc", a}});
      eps.push_back(e);
      aucs.push_back(a);
      robust_text += "  eps " + fmt("%g", e) + ": AUC " + fmt("%.4f", a) + "\n";
    }
    if (figures_available())
      write_chart_png((dir / ("robustness_" + o.split + ".png")).string(),
                      {.title = run.config.part + ": every cell attacked against its label",
                       .x_label = "FGSM epsilon (pixels in [0, 1])",
                       .y_label = o.split + " AUC",
                       .y_min = 0,
                       .y_max = 1},
                      {{.x = eps, .y = aucs}});
  }
  write_text((dir / ("scores_" + o.split + ".csv")).string(), csv);
  if (!o.audit.empty())  // one run: its score rule as calibrated on valid above
    write_audit(o.audit, {o.command, split.x_path, o.rule, threshold}, run, total.rule, split.cells, {}, labels,
                total.terms, scores);
  write_json_atomic((dir / ("eval_" + o.split + ".json")).string(), out);

  std::string t = run.config.part + ", " + o.split + " split, " + std::to_string(scores.size()) + " cells: AUC " +
                  fmt("%.4f", auc) + " (95% CI " + fmt("%.4f", lo) + "-" + fmt("%.4f", hi) + "), threshold " +
                  fmt("%.6g", threshold) + " (" + o.rule + ", fitted on valid), score " + score_name + " over pools " +
                  method::layers_string(layers) + ", tta " + tta;
  if (members > 1) t += ", ensemble of " + std::to_string(o.run_dirs.size()) + " runs";
  t += "\n";
  t += "convention          accuracy precision recall     f1   f0.5  gmean    mcc    tp    fp    tn    fn\n";
  for (const auto& [name, m] : {std::pair{"abnormal positive", ab}, std::pair{"normal positive", np}}) {
    char row[256];
    std::snprintf(row, sizeof row, "%-18s %9.4f %9.4f %6.4f %6.4f %6.4f %6.4f %6.4f %5lld %5lld %5lld %5lld\n", name,
                  m.accuracy, m.precision, m.recall, m.f1, m.f05, m.gmean, m.mcc, static_cast<long long>(m.counts.tp),
                  static_cast<long long>(m.counts.fp), static_cast<long long>(m.counts.tn), static_cast<long long>(m.counts.fn));
    t += row;
  }
  if (!robust_text.empty()) t += "FGSM robustness (normal cells raised, abnormal lowered):\n" + robust_text;
  return t;
}

long score_cells(const ScoreOptions& o) {
  const RunInfo run = read_run(o.run_dir);
  auto det = open_detector(o.run_dir, run);
  const auto [cells, names] = data::load_cells(o.input);
  const auto it = run.thresholds.find(o.rule);
  double threshold = 0;
  if (it != run.thresholds.end()) {
    threshold = it->second;
  } else {  // another rule: fitted on the run's validation split, with its calibrated score rule
    const data::LabelledCells valid = validation_split(run, run.config.data_dir);
    threshold = metrics::fit_threshold(o.rule, det->score(valid.cells), valid.labels);
  }
  const std::size_t layers = run.config.score_layers.size();
  // Under mpirun each process scores its share of the cells and rank 0 writes them all.
  const Shard mine = shard_of(cells.dim(0), world().rank(), world().size());
  const std::vector<double> my_terms =
      mine.size() == 0 ? std::vector<double>{} : det->layer_terms(cells.slice(mine.begin, mine.end), det->rule().tta_flip);
  const std::vector<double> terms = world().size() > 1 ? gather_all(my_terms) : my_terms;
  if (world().rank() != 0) return 0;
  const std::vector<double> scores = det->rule().combine_terms(terms, layers);  // = det->score(cells)
  std::string csv = "index,name,score,call\n";
  long abnormal = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const bool call = scores[i] > threshold;
    abnormal += call;
    csv += std::to_string(i) + "," + (names.empty() ? "" : names[i]) + "," + fmt("%.17g", scores[i]) + "," +
           (call ? "abnormal" : "normal") + "\n";
  }
  write_text(o.out, csv);
  if (!o.audit.empty()) write_audit(o.audit, {o.command, o.input, o.rule, threshold}, run, det->rule(), cells, names, {}, terms, scores);
  return abnormal;
}

}  // namespace morphokd::pipeline
