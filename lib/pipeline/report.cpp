#include "morphokd/pipeline/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <tuple>

#include "morphokd/data/mhsma.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/method/distill.hpp"
#include "morphokd/method/metrics.hpp"
#include "morphokd/method/stats.hpp"
#include "morphokd/pipeline/experiment.hpp"
#include "morphokd/pipeline/figures.hpp"
#include "morphokd/runtime.hpp"
#include "run_json.hpp"

namespace morphokd::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// METHOD.md: the paper's test AUC, and the supervised MHSMA results it quotes (MHSMA README).
const std::map<std::string, double> kPaperAuc{{"head", 70.4}, {"vacuole", 87.6}, {"acrosome", 71.1}};
const std::map<std::string, double> kJavadi2019{{"head", 77.80}, {"vacuole", 88.08}, {"acrosome", 83.89}};
const std::map<std::string, double> kAbbasi2020{{"head", 81.56}, {"vacuole", 94.73}, {"acrosome", 79.65}};
const char* const kBegin = "<!-- morphokd report: begin -->";
const char* const kEnd = "<!-- morphokd report: end -->";

std::string num(double v, int digits = 3) {
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

std::string sci(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

std::string mean_sd_text(const std::vector<double>& v, int digits = 3) {
  const stats::MeanSd m = stats::mean_sd(v);
  return m.n > 1 ? num(m.mean, digits) + " ± " + num(m.sd, digits) : num(m.mean, digits);
}

// One finished cell's results on the test split (and its validation AUC).
struct CellResult {
  const Cell* cell = nullptr;
  json valid, test;  // eval_{valid,test}.json
  std::vector<double> scores;
  std::vector<std::uint8_t> labels;
  std::vector<int> pools;
  std::vector<std::vector<double>> terms;  // [pool][cell]
  double threshold = 0, seconds = 0;
  std::int64_t parameters = 0;
};

// scores_test.csv: index,label,score,term_poolK...
void read_scores(const fs::path& path, CellResult& r) {
  const auto bytes = read_file(path.string());
  std::istringstream in(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  std::string line;
  std::getline(in, line);
  if (!line.starts_with("index,label,score")) fail(path.string() + ": not a morphokd scores file");
  for (std::size_t at = line.find(",term_pool"); at != std::string::npos; at = line.find(",term_pool", at + 1))
    r.pools.push_back(std::stoi(line.substr(at + 10)));
  r.terms.assign(r.pools.size(), {});
  for (std::size_t row = 0; std::getline(in, line); ++row) {
    std::istringstream fields(line);
    std::string f;
    std::vector<double> v;
    while (std::getline(fields, f, ',')) v.push_back(std::strtod(f.c_str(), nullptr));
    if (v.size() != 3 + r.pools.size() || v[0] != static_cast<double>(row) || (v[1] != 0 && v[1] != 1))
      fail(path.string() + ": line " + std::to_string(row + 2) + " is malformed");
    r.labels.push_back(static_cast<std::uint8_t>(v[1]));
    r.scores.push_back(v[2]);
    for (std::size_t k = 0; k < r.pools.size(); ++k) r.terms[k].push_back(v[3 + k]);
  }
}

CellResult read_cell(const std::string& dir, const Cell& c) {
  const fs::path run = fs::path(dir) / "runs" / c.name;
  if (!fs::exists(run / "cell.json"))
    fail("cell " + c.name + " is not finished; run `morphokd experiment` with the same --config and --out to finish it");
  CellResult r;
  r.cell = &c;
  try {
    const json cell = read_json((run / "cell.json").string());
    r.seconds = cell.at("train_seconds").get<double>() + cell.at("eval_seconds").get<double>();
    r.valid = read_json((run / "eval_valid.json").string());
    r.test = read_json((run / "eval_test.json").string());
    r.threshold = threshold_from_json(r.test.at("threshold"));
    r.parameters = read_json((run / "run.json").string()).at("student").at("parameters").get<std::int64_t>();
    read_scores(run / "scores_test.csv", r);
    if (r.scores.size() != r.test.at("n").get<std::size_t>()) fail("scores_test.csv and eval_test.json differ in cell count");
  } catch (const json::exception& x) {
    fail("cell " + c.name + ": malformed result file: " + x.what());
  } catch (const Error& x) {
    fail("cell " + c.name + ": " + x.what());
  }
  return r;
}

double auc(const json& eval) { return eval.at("auc").get<double>(); }

// A Markdown table.
std::string table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  auto line = [](const std::vector<std::string>& cells) {
    std::string s = "|";
    for (const std::string& c : cells) s += " " + c + " |";
    return s + "\n";
  };
  std::string s = line(head) + "|";
  for (std::size_t i = 0; i < head.size(); ++i) s += i == 0 ? "---|" : "---:|";
  s += "\n";
  for (const auto& r : rows) s += line(r);
  return s + "\n";
}

class Report {
 public:
  Report(const Experiment& e, const std::string& dir, const fs::path& figures) : e_(e), dir_(dir), figures_(figures) {}

  std::string build(const std::string& record_command, const std::string& report_command);

 private:
  const Experiment& e_;
  std::string dir_;
  fs::path figures_;
  std::map<std::string, CellResult> results_;  // by cell name
  std::string figure_notes_;

  const CellResult& result(const Cell* c) {
    auto it = results_.find(c->name);
    if (it == results_.end()) it = results_.emplace(c->name, read_cell(dir_, *c)).first;
    return it->second;
  }
  // The first study feeding `analysis`, or null.
  const Study* study_for(const std::string& analysis) const {
    for (const Study& s : e_.studies)
      if (std::find(s.analyses.begin(), s.analyses.end(), analysis) != s.analyses.end()) return &s;
    return nullptr;
  }
  // A study's cells grouped by part, parts in the paper's order.
  std::vector<std::pair<std::string, std::vector<const CellResult*>>> by_part(const Study& s) {
    std::vector<std::pair<std::string, std::vector<const CellResult*>>> out;
    const std::vector<const Cell*> cells = study_cells(e_, s.name);
    for (const std::string& part : data::parts()) {
      std::vector<const CellResult*> rs;
      for (const Cell* c : cells)
        if (c->config.part == part) rs.push_back(&result(c));
      if (!rs.empty()) out.emplace_back(part, std::move(rs));
    }
    return out;
  }
  std::string figure(const std::string& file, const std::string& caption) const {
    return figures_available() ? "![" + caption + "](" + file + ")\n\n" : "(" + caption + ": this morphokd was built without OpenCV, no PNG.)\n\n";
  }
  // Names the study and its epochs: a study may train for fewer epochs than the others.
  std::string source(const Study& s) const {
    const std::vector<const Cell*> cells = study_cells(e_, s.name);
    std::set<int> epochs;
    for (const Cell* c : cells) epochs.insert(c->config.epochs);
    const std::string span = epochs.size() == 1 ? std::to_string(*epochs.begin())
                                                : std::to_string(*epochs.begin()) + "–" + std::to_string(*epochs.rbegin());
    return "Cells: study `" + s.name + "` (" + std::to_string(cells.size()) + (cells.size() == 1 ? " cell, " : " cells, ") + span +
           (span == "1" ? " epoch" : " epochs") + ", see Commands).\n\n";
  }

  std::string table2(const Study& s);
  std::string table3(const Study& s);
  std::string table4(const Study& s);
  std::string fig5(const Study& s);
  std::string table5(const Study& s);
  std::string sweep(const Study& s, const std::string& title, bool parameters, bool deltas = false);
  std::string roc(const Study& s);
  std::string differences() const;
  std::string commands(const std::string& record_command, const std::string& report_command) const;
};

// Table 2: metrics per part, mean ± sd over the study's cells (seeds), and a 95% percentile
// bootstrap CI of that mean: each draw resamples the test cells once for all seeds.
std::string Report::table2(const Study& s) {
  const std::vector<std::string> names{"accuracy", "precision", "recall", "f1", "f05", "gmean", "mcc"};
  std::vector<std::vector<std::string>> rows, ci_rows;
  for (const auto& [part, group] : by_part(s)) {
    const std::vector<const CellResult*>& rs = group;  // a lambda may not capture a structured binding (Clang 14)
    std::vector<std::string> row{part + " (" + std::to_string(rs.size()) + ")"}, ci{part};
    const std::size_t n = rs.front()->scores.size();
    auto seed_mean = [&](auto metric) {
      return stats::bootstrap_ci(
          n,
          [&](std::span<const double> w) {
            double sum = 0;
            for (const CellResult* r : rs) {
              const double v = metric(*r, w);
              if (std::isnan(v)) return v;
              sum += v;
            }
            return sum / static_cast<double>(rs.size());
          },
          e_.bootstrap, 0);
    };
    for (const std::string& m : names) {
      std::vector<double> v;
      for (const CellResult* r : rs) v.push_back(r->test.at("abnormal_positive").at(m).get<double>());
      row.push_back(mean_sd_text(v));
      const auto [lo, hi] = seed_mean([&](const CellResult& r, std::span<const double> w) {
        metrics::Confusion c;
        for (std::size_t i = 0; i < w.size(); ++i) {
          const auto k = static_cast<std::int64_t>(w[i]);
          const bool called = r.scores[i] > r.threshold;
          (r.labels[i] ? (called ? c.tp : c.fn) : (called ? c.fp : c.tn)) += k;
        }
        const metrics::Classification x = metrics::classify(c);
        const std::map<std::string, double> all{{"accuracy", x.accuracy}, {"precision", x.precision}, {"recall", x.recall},
                                                {"f1", x.f1}, {"f05", x.f05}, {"gmean", x.gmean}, {"mcc", x.mcc}};
        return all.at(m);
      });
      ci.push_back(num(lo) + "–" + num(hi));
    }
    std::vector<double> aucs;
    for (const CellResult* r : rs) aucs.push_back(auc(r->test));
    row.push_back(mean_sd_text(aucs));
    const auto [lo, hi] = seed_mean([](const CellResult& r, std::span<const double> w) {
      double abnormal = 0, normal = 0;  // a draw with one class only is redrawn
      for (std::size_t i = 0; i < w.size(); ++i) (r.labels[i] ? abnormal : normal) += w[i];
      return abnormal == 0 || normal == 0 ? std::nan("") : metrics::roc_auc(r.scores, r.labels, w);
    });
    ci.push_back(num(lo) + "–" + num(hi));
    const auto paper = kPaperAuc.find(part);
    row.push_back(paper == kPaperAuc.end() ? "–" : num(paper->second / 100));
    rows.push_back(row);
    ci_rows.push_back(ci);
  }
  const std::vector<std::string> head{"part (seeds)", "accuracy", "precision", "recall", "F1", "F0.5", "G-mean", "MCC", "AUC"};
  std::vector<std::string> with_paper = head;
  with_paper.push_back("paper AUC");
  return "## Table 2 — test metrics per part\n\n" + source(s) +
         "Abnormal cells are the positive class; the threshold is fitted on the validation split (rule `" +
         e_.threshold_rule + "`). Mean ± sd over the seeds:\n\n" + table(with_paper, rows) +
         "95% CI of the seed mean (percentile bootstrap, " + std::to_string(e_.bootstrap) +
         " resamples of the test cells, one resample for all seeds):\n\n" + table(head, ci_rows);
}

// Table 3: the confusion matrix of every cell, both conventions derivable from it.
std::string Report::table3(const Study& s) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& [part, rs] : by_part(s))
    for (const CellResult* r : rs) {
      const json& c = r->test.at("abnormal_positive");
      rows.push_back({part, std::to_string(r->cell->config.seed), std::to_string(c.at("tp").get<long>()),
                      std::to_string(c.at("fn").get<long>()), std::to_string(c.at("fp").get<long>()),
                      std::to_string(c.at("tn").get<long>())});
    }
  return "## Table 3 — confusion matrices (test split)\n\n" + source(s) +
         "Rows per seed. TP: abnormal called abnormal; FN: abnormal called normal; FP: normal called abnormal; TN: normal "
         "called normal (MHSMA's normal-positive matrix swaps TP↔TN and FP↔FN).\n\n" +
         table({"part", "seed", "TP", "FN", "FP", "TN"}, rows);
}

// Table 4: our test results beside the published MHSMA rows.
std::string Report::table4(const Study& s) {
  const auto parts = by_part(s);
  std::vector<std::string> head{"method", "training labels", "metric"};
  for (const auto& p : parts) head.push_back(p.first);
  auto published = [&](const std::string& name, const std::string& labels, const std::string& metric,
                       const std::map<std::string, double>& v) {
    std::vector<std::string> row{name, labels, metric};
    for (const auto& p : parts) row.push_back(v.count(p.first) ? num(v.at(p.first), 2) : "–");
    return row;
  };
  std::vector<std::vector<std::string>> rows{
      published("Javadi & Mirroshandel 2019", "normal and abnormal", "as published (MHSMA README)", kJavadi2019),
      published("Abbasi et al. 2020 (DTL)", "normal and abnormal", "as published (MHSMA README)", kAbbasi2020),
      published("Nabipour et al. 2024 (the paper, MKD)", "normal only", "AUC %", kPaperAuc)};
  for (const auto& [metric, label] : {std::pair{"auc", "AUC %"}, {"accuracy", "accuracy %, normal positive"},
                                      {"f05", "F0.5 %, normal positive"}}) {
    std::vector<std::string> row{"morphokd (this report)", "normal only", label};
    for (const auto& p : parts) {
      std::vector<double> v;
      for (const CellResult* r : p.second)
        v.push_back(100 * (std::string(metric) == "auc" ? auc(r->test) : r->test.at("normal_positive").at(metric).get<double>()));
      row.push_back(mean_sd_text(v, 2));
    }
    rows.push_back(row);
  }
  return "## Table 4 — comparison with published MHSMA results\n\n" + source(s) +
         "Supervised methods see abnormal cells in training; the paper and morphokd see normal cells only. "
         "MHSMA's published convention counts normal cells as positive. Our sources (METHOD.md) quote the "
         "supervised numbers without naming the metric; they are copied as published. Ghasemian 2015's numbers are "
         "not in our sources.\n\n" +
         table(head, rows);
}

// Fig. 5: per critical layer, the mean distance term of normal and abnormal test cells.
std::string Report::fig5(const Study& s) {
  std::string text = "## Fig. 5 — per-critical-layer distances, normal vs abnormal (test split)\n\n" + source(s) +
                     "Each score layer's term (1 − cos + λ·MSE, over test-time flips when the cell uses them) for the first seed's cell: "
                     "mean ± sd over normal and over abnormal test cells.\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [part, rs] : by_part(s)) {
    const CellResult& r = *rs.front();
    Series normal{"normal", {}, {}, {}}, abnormal{"abnormal", {}, {}, {}};
    Chart chart{"Fig. 5, " + part + ": distance per critical layer", "critical layer", "distance term", {}};
    for (std::size_t k = 0; k < r.pools.size(); ++k) {
      std::vector<double> a, b;
      for (std::size_t i = 0; i < r.labels.size(); ++i) (r.labels[i] ? b : a).push_back(r.terms[k][i]);
      const stats::MeanSd ma = stats::mean_sd(a), mb = stats::mean_sd(b);
      chart.x_categories.push_back("pool" + std::to_string(r.pools[k]));
      for (auto [series, m, shift] : {std::tuple{&normal, ma, -0.08}, std::tuple{&abnormal, mb, 0.08}}) {
        series->x.push_back(static_cast<double>(k) + shift);  // side by side: error bars apart
        series->y.push_back(m.mean);
        series->err.push_back(m.sd);
      }
      rows.push_back({part, "pool" + std::to_string(r.pools[k]), num(ma.mean, 4) + " ± " + num(ma.sd, 4),
                      num(mb.mean, 4) + " ± " + num(mb.sd, 4)});
    }
    const std::string file = "fig5_" + part + ".png";
    if (figures_available()) write_chart_png((figures_ / file).string(), chart, {normal, abnormal});
    text += figure(file, "Fig. 5, " + part);
  }
  return text + table({"part", "layer", "normal", "abnormal"}, rows);
}

// Fig. 13 and Table 5: the total loss (the anomaly score) of normal vs abnormal test cells.
std::string Report::table5(const Study& s) {
  std::string text = "## Fig. 13 and Table 5 — total loss of normal vs abnormal cells, one-way ANOVA (test split)\n\n" +
                     source(s) + "The first seed's anomaly score per test cell; F and p from a one-way ANOVA of the two groups.\n\n";
  std::vector<BoxGroup> groups;
  std::vector<std::vector<std::string>> rows;
  for (const auto& [part, rs] : by_part(s)) {
    const CellResult& r = *rs.front();
    std::vector<double> normal, abnormal;
    for (std::size_t i = 0; i < r.labels.size(); ++i) (r.labels[i] ? abnormal : normal).push_back(r.scores[i]);
    const stats::Anova a = stats::one_way_anova({normal, abnormal});
    const stats::MeanSd mn = stats::mean_sd(normal), ma = stats::mean_sd(abnormal);
    rows.push_back({part, std::to_string(normal.size()), num(mn.mean, 4) + " ± " + num(mn.sd, 4),
                    std::to_string(abnormal.size()), num(ma.mean, 4) + " ± " + num(ma.sd, 4),
                    num(a.f, 3), std::to_string(a.df_between) + ", " + std::to_string(a.df_within), sci(a.p)});
    const std::string file = "fig13_" + part + ".png";
    if (figures_available())
      write_boxplot_png((figures_ / file).string(), "Fig. 13, " + part + ": total loss (test)", "anomaly score",
                        {{"normal", normal, 0}, {"abnormal", abnormal, 1}});
    text += figure(file, "Fig. 13, " + part);
  }
  return text + table({"part", "normal n", "normal mean ± sd", "abnormal n", "abnormal mean ± sd", "F", "df", "p"}, rows);
}

// Tables 6-9 and Fig. 15: valid / test AUC per setting (the study's axes besides part and
// seed) and part, mean over seeds; `deltas`: a row per later setting with its change in mean
// test AUC from the first setting, in AUC points.
std::string Report::sweep(const Study& s, const std::string& title, bool parameters, bool deltas) {
  std::vector<std::string> settings;  // row labels in grid order
  std::map<std::string, std::map<std::string, std::vector<const CellResult*>>> cells;  // setting -> part -> cells
  std::map<std::string, std::int64_t> params;
  for (const Cell* c : study_cells(e_, s.name)) {
    std::string label;
    for (const std::string& axis : s.axes)
      if (axis != "part" && axis != "seed") label += (label.empty() ? "" : ", ") + axis + " " + c->axes.at(axis);
    if (label.empty()) label = "default";
    if (!cells.count(label)) settings.push_back(label);
    cells[label][c->config.part].push_back(&result(c));
    params[label] = result(c).parameters;
  }
  std::vector<std::string> parts;
  for (const std::string& p : data::parts())
    for (const auto& [label, by] : cells)
      if (by.count(p) && std::find(parts.begin(), parts.end(), p) == parts.end()) parts.push_back(p);
  std::vector<std::string> head{"setting"};
  if (parameters) head.push_back("trainable parameters");
  for (const std::string& p : parts) head.push_back(p + " valid / test AUC");
  std::vector<std::vector<std::string>> rows;
  std::vector<Series> series;
  for (const std::string& p : parts) series.push_back({p, {}, {}, {}});
  for (std::size_t k = 0; k < settings.size(); ++k) {
    std::vector<std::string> row{settings[k]};
    if (parameters) row.push_back(std::to_string(params[settings[k]]));
    for (std::size_t j = 0; j < parts.size(); ++j) {
      const auto it = cells[settings[k]].find(parts[j]);
      if (it == cells[settings[k]].end()) {
        row.push_back("–");
        continue;
      }
      std::vector<double> v, t;
      for (const CellResult* r : it->second) v.push_back(auc(r->valid)), t.push_back(auc(r->test));
      row.push_back(mean_sd_text(v) + " / " + mean_sd_text(t));
      series[j].x.push_back(static_cast<double>(k));
      series[j].y.push_back(stats::mean_sd(t).mean);
    }
    rows.push_back(row);
  }
  for (std::size_t k = 1; deltas && k < settings.size(); ++k) {
    std::vector<std::string> row{"Δ test AUC, " + settings[k] + " − " + settings[0] + " (points)"};
    if (parameters) row.push_back("");
    for (const std::string& p : parts) {
      const auto a = cells[settings[0]].find(p), b = cells[settings[k]].find(p);
      if (a == cells[settings[0]].end() || b == cells[settings[k]].end()) {
        row.push_back("–");
        continue;
      }
      std::vector<double> ta, tb;
      for (const CellResult* r : a->second) ta.push_back(auc(r->test));
      for (const CellResult* r : b->second) tb.push_back(auc(r->test));
      row.push_back(num(100 * (stats::mean_sd(tb).mean - stats::mean_sd(ta).mean), 2));
    }
    rows.push_back(row);
  }
  std::string text = "## " + title + "\n\n" + source(s) + "Mean over seeds where a setting has several.\n\n" + table(head, rows);
  if (parameters && figures_available()) {
    Chart chart{"Fig. 15: students, test AUC", "student", "test AUC", settings};
    write_chart_png((figures_ / "fig15_students.png").string(), chart, series);
    text += figure("fig15_students.png", "Fig. 15");
  }
  return text;
}

std::string Report::roc(const Study& s) {
  std::string text = "## ROC — test split, per part\n\n" + source(s) + "The first seed's cell of each part.\n\n";
  std::vector<Series> series;
  for (const auto& [part, rs] : by_part(s)) {
    Series c{part + " (AUC " + num(auc(rs.front()->test)) + ")", {}, {}, {}, true, false};
    for (const stats::RocPoint& p : stats::roc_curve(rs.front()->scores, rs.front()->labels)) {
      c.x.push_back(p.fpr);
      c.y.push_back(p.tpr);
    }
    series.push_back(std::move(c));
  }
  if (figures_available()) {
    Chart chart{"ROC, test split", "false positive rate", "true positive rate", {}, 0.0, 1.0, true};
    write_chart_png((figures_ / "roc.png").string(), chart, series);
  }
  return text + figure("roc.png", "ROC curves");
}

// Where the setting differs from the paper's reference (METHOD.md) and what that means.
std::string Report::differences() const {
  const TrainConfig& c = e_.cells.front().config;
  std::string t = "## Setting, and where it differs from the paper\n\n";
  t += "- Teacher `" + c.teacher + "`" +
       (c.teacher.ends_with(".safetensors") || c.teacher.ends_with(".onnx")
            ? ""
            : ": not the paper's ImageNet VGG16, whose weights cannot be downloaded on the machines this ran on; "
              "absolute AUCs are therefore not comparable with the paper's, only the comparisons within this report") +
       ".\n";
  t += "- " + std::to_string(c.epochs) + (c.epochs == 1 ? " epoch" : " epochs") + " (the reference code ran 201), batch " + std::to_string(c.batch) +
       ", Adam lr " + sci(c.lr) + ", λ " + sci(c.lambda) + ", student " + c.student + ".\n";
  t += "- Critical layers: training pools " + method::layers_string(c.train_layers) + ", score pools " +
       method::layers_string(c.score_layers) + " (the paper scores 3,4,5), test-time flips `" + c.tta +
       "` (the paper: none), input `" + c.input_norm + "` (the paper: x/255, `none`), augmentation `" + c.augment + "`.\n";
  t += "- The tail is not in the paper; it is reported because MHSMA labels it.\n\n";
  return t;
}

std::string Report::commands(const std::string& record_command, const std::string& report_command) const {
  std::string t = "## Commands\n\n```\n" + record_command + "\n" + report_command + "\n```\n\n";
  t += "Each cell is one training run, `morphokd train` with its `run.json` configuration, then `morphokd eval "
       "--split valid` and `--split test`:\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const Cell& c : e_.cells) {
    std::string axes;
    for (const auto& [k, v] : c.axes) axes += (axes.empty() ? "" : ", ") + k + " " + v;
    std::string studies;
    for (const std::string& s : c.studies) studies += (studies.empty() ? "" : ", ") + s;
    const auto it = results_.find(c.name);
    rows.push_back({"`" + c.name + "`", studies, axes, it == results_.end() ? "–" : num(it->second.seconds, 0)});
  }
  return t + table({"cell (runs/…)", "studies", "grid values", "seconds"}, rows);
}

std::string Report::build(const std::string& record_command, const std::string& report_command) {
  std::string body;
  for (const auto& [analysis, fn] : std::vector<std::pair<std::string, std::string (Report::*)(const Study&)>>{
           {"table2", &Report::table2}, {"table3", &Report::table3}, {"table4", &Report::table4},
           {"fig5", &Report::fig5},     {"table5", &Report::table5}, {"roc", &Report::roc}})
    if (const Study* s = study_for(analysis)) body += (this->*fn)(*s);
  if (!study_for("table5") && study_for("fig13")) body += table5(*study_for("fig13"));
  for (const auto& [analysis, title, params, deltas] : std::vector<std::tuple<std::string, std::string, bool, bool>>{
           {"table6", "Table 6 — λ, validation AUC (test beside it)", false, false},
           {"table7", "Fig. 15 and Table 7 — students A, B, C", true, false},
           {"table8", "Table 8 — critical layers", false, false},
           {"table9", "Table 9 — augmentation and FGSM", false, false},
           {"precision", "The teacher's precision against fp32 (not in the paper)", false, true}})
    if (const Study* s = study_for(analysis)) body += sweep(*s, title, params, deltas);
  if (!study_for("table7") && study_for("fig15")) body += sweep(*study_for("fig15"), "Fig. 15 and Table 7 — students A, B, C", true);
  double seconds = 0;
  for (const auto& [name, r] : results_) seconds += r.seconds;
  std::string head = "# morphokd experiment report\n\n";
  if (!e_.description.empty()) head += e_.description + "\n\n";
  head += std::to_string(e_.cells.size()) + " cells (training runs), " + num(seconds / 60, 1) +
          " min of training and evaluation in all; morphokd " + version_string() + ". Tables and figures carry the "
          "paper's numbering.\n\n";
  return head + differences() + body + commands(record_command, report_command);
}

}  // namespace

std::string replace_report_section(const std::string& text, const std::string& section, const std::string& name) {
  // Marker lines only: the markers may also be quoted inside a line, as the README does.
  std::vector<std::size_t> begins, ends;  // offsets of the lines that are exactly a marker
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t eol = std::min(text.find('\n', at), text.size());
    const std::string_view line(text.data() + at, eol - at);
    if (line == kBegin) begins.push_back(at);
    if (line == kEnd) ends.push_back(at);
    at = eol + 1;
  }
  if (begins.size() != 1 || ends.size() != 1 || ends[0] < begins[0])
    fail(name + ": needs one line " + kBegin + " and, after it, one line " + kEnd);
  const std::size_t from = begins[0] + std::string_view(kBegin).size() + 1;
  return text.substr(0, from) + section + text.substr(ends[0]);
}

std::string write_report(const ReportOptions& o) {
  const Experiment e = read_experiment_record(o.dir);
  const json record = read_json((fs::path(o.dir) / "experiment.json").string());
  const fs::path out = o.out.empty() ? fs::path(o.dir) / "report" : fs::path(o.out);
  StagedDirectory staged(out.string(), true);
  Report report(e, o.dir, staged.path());
  const std::string md = report.build(record.value("command", ""), o.command);
  write_file_atomic((staged.path() / "report.md").string(), std::as_bytes(std::span(md.data(), md.size())));
  std::string section;  // the README gets the report two heading levels down, figures linked from there
  if (!o.readme.empty()) {
    const auto bytes = read_file(o.readme);
    const std::string readme(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const std::string link = fs::relative(out, fs::absolute(o.readme).parent_path()).generic_string() + "/";
    std::istringstream in(md);
    std::string line;
    std::getline(in, line);  // the report's title: the README has its own heading
    while (std::getline(in, line)) {
      if (line.starts_with("#")) line = "##" + line;
      for (std::size_t at = line.find("]("); at != std::string::npos; at = line.find("](", at + 2))
        if (line.find(".png)", at) != std::string::npos) line.insert(at + 2, link);
      section += line + "\n";
    }
    const std::string updated = replace_report_section(readme, section, o.readme);
    staged.commit();
    write_file_atomic(o.readme, std::as_bytes(std::span(updated.data(), updated.size())));
  } else {
    staged.commit();
  }
  return (out / "report.md").string();
}

}  // namespace morphokd::pipeline
