#include "morphokd/pipeline/experiment.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "morphokd/data/mhsma.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/method/metrics.hpp"
#include "morphokd/pipeline/detector.hpp"
#include "morphokd/pipeline/evaluate.hpp"
#include "morphokd/pipeline/progress.hpp"
#include "morphokd/pipeline/train.hpp"
#include "morphokd/runtime.hpp"
#include "run_json.hpp"

namespace morphokd::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string>& known_analyses() {
  static const std::vector<std::string> names{"table2", "table3", "table4", "table5", "fig5",  "fig13",
                                              "table6", "table7", "fig15",  "table8", "table9", "roc",
                                              "precision"};
  return names;
}

namespace {

constexpr int kExperimentFormatVersion = 1;
const char* const kCritical = "critical";  // train_critical and score_critical together

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// `config`[key] = v, where key is a training option (run.json "config" key) or "critical".
void set_option(json& config, const std::string& key, const json& v, const std::string& where) {
  if (key == kCritical) {
    config["train_critical"] = config["score_critical"] = v;
  } else {
    if (!config.contains(key) || key == "data_dir") fail(where + ": unknown training option " + quote(key));
    config[key] = v;
  }
}

std::string cell_name(const TrainConfig& c) {
  json j = config_to_json(c);
  j.erase("data_dir");  // the same data may sit in other folders
  // Options added later, at their defaults, are left out: cells named before them keep their names.
  if (c.precision == "fp32") j.erase("precision");
  if (c.valid_every == 1) j.erase("valid_every");
  const std::string text = j.dump();
  return c.part + "-" + c.student + "-s" + std::to_string(c.seed) + "-" +
         sha256_hex(std::as_bytes(std::span(text.data(), text.size()))).substr(0, 8);
}

// "8 cells in 1 study"
std::string grid_size(const Experiment& e) {
  return std::to_string(e.cells.size()) + (e.cells.size() == 1 ? " cell in " : " cells in ") +
         std::to_string(e.studies.size()) + (e.studies.size() == 1 ? " study" : " studies");
}

// Every combination of the grid's values, the last key varying fastest.
std::vector<std::vector<const json*>> combinations(const json& grid) {
  std::vector<std::vector<const json*>> out{{}};
  for (const auto& [key, values] : grid.items()) {
    std::vector<std::vector<const json*>> next;
    for (const auto& prefix : out)
      for (const json& v : values) {
        next.push_back(prefix);
        next.back().push_back(&v);
      }
    out = std::move(next);
  }
  return out;
}

fs::path cell_dir(const std::string& out, const Cell& c) { return fs::path(out) / "runs" / c.name; }
bool finished(const std::string& out, const Cell& c) { return fs::exists(cell_dir(out, c) / "cell.json"); }

// std::cout into `path` (appended) while alive: training and evaluation print to the cell's log.
class CoutToFile {
 public:
  explicit CoutToFile(const fs::path& path) : file_(path, std::ios::app), saved_(std::cout.rdbuf(file_.rdbuf())) {
    if (!file_) fail(path.string() + ": cannot open for writing");
  }
  ~CoutToFile() { std::cout.rdbuf(saved_); }
  CoutToFile(const CoutToFile&) = delete;
  CoutToFile& operator=(const CoutToFile&) = delete;

 private:
  std::ofstream file_;
  std::streambuf* saved_;
};

// The teacher memo (detector.hpp) on while alive: the cells' teacher maps are computed once.
constexpr double kMemoBytes = 2e9;
class TeacherMemo {
 public:
  explicit TeacherMemo(double bytes) : saved_(teacher_memo_budget()) { set_teacher_memo_budget(bytes); }
  ~TeacherMemo() { set_teacher_memo_budget(saved_); }
  TeacherMemo(const TeacherMemo&) = delete;
  TeacherMemo& operator=(const TeacherMemo&) = delete;

 private:
  double saved_;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Trains (or resumes) and evaluates one cell, then marks it finished.
void run_cell(const Experiment& e, const Cell& c, const std::string& out) {
  const fs::path dir = cell_dir(out, c);
  const CoutToFile log(fs::path(out) / "runs" / (c.name + ".log"));
  const auto start = std::chrono::steady_clock::now();
  bool trained = false;  // the name is the configuration's hash: a finished run here is this cell's
  try {
    read_run(dir.string());
    trained = true;
  } catch (const Error&) {  // absent or unfinished: train, resuming whatever is there
  }
  if (!trained) train(c.config, dir.string(), fs::exists(dir));
  const double train_seconds = seconds_since(start);
  json cell = {{"name", c.name}, {"studies", c.studies}, {"axes", c.axes}, {"train_seconds", train_seconds}};
  for (const char* split : {"valid", "test"}) {
    EvalOptions o;
    o.run_dirs = {dir.string()};
    o.split = split;
    o.rule = e.threshold_rule;
    o.bootstrap = e.bootstrap;
    std::cout << evaluate(o);
    cell[std::string(split) + "_auc"] = read_json((dir / ("eval_" + std::string(split) + ".json")).string()).at("auc");
  }
  cell["eval_seconds"] = seconds_since(start) - train_seconds;
  write_json_atomic((dir / "cell.json").string(), cell);
}

}  // namespace

Experiment parse_experiment(std::span<const std::byte> bytes, const std::string& path, const std::string& data_dir) {
  const json j = parse_json_object(bytes, path);
  Experiment e;
  e.sha256 = sha256_hex(bytes);
  try {
    if (j.value("format", "") != "morphokd-experiment") fail("not a morphokd experiment (\"format\": \"morphokd-experiment\")");
    const int version = j.value("format_version", 0);
    if (version < 1 || version > kExperimentFormatVersion)
      fail("format_version " + std::to_string(version) + " is not one this morphokd reads (1)");
    e.description = j.value("description", "");
    json base = config_to_json(TrainConfig{});
    const json train = j.value("train", json::object());  // named: items() refers to it
    for (const auto& [key, v] : train.items()) set_option(base, key, v, "train");
    if (!data_dir.empty()) base["data_dir"] = data_dir;
    const json eval = j.value("eval", json::object());
    e.bootstrap = eval.value("bootstrap", e.bootstrap);
    e.threshold_rule = eval.value("threshold_rule", e.threshold_rule);
    if (e.bootstrap < 100) fail("eval: bootstrap must be at least 100");
    metrics::fit_threshold(e.threshold_rule, std::vector<double>{0.0, 1.0}, std::vector<std::uint8_t>{0, 1});

    const json& studies = j.at("studies");
    if (!studies.is_array() || studies.empty()) fail("studies: expected a non-empty list");
    for (const json& s : studies) {
      Study study;
      study.name = s.at("name").get<std::string>();
      const std::string where = "study " + quote(study.name);
      if (study.name.empty() || study.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)
        fail(where + ": a name is lower-case letters, digits, _ and -");
      for (const Study& other : e.studies)
        if (other.name == study.name) fail(where + ": named twice");
      study.analyses = s.at("analyses").get<std::vector<std::string>>();
      for (const std::string& a : study.analyses)
        if (std::find(known_analyses().begin(), known_analyses().end(), a) == known_analyses().end())
          fail(where + ": unknown analysis " + quote(a) + " (expected table2-table9, fig5, fig13, fig15, roc or precision)");
      json study_base = base;  // the experiment's options with the study's own over them
      const json study_train = s.value("train", json::object());
      for (const auto& [key, v] : study_train.items()) set_option(study_base, key, v, where + ": train");
      const json& grid = s.at("grid");
      if (!grid.is_object() || grid.empty()) fail(where + ": grid: expected an object of option lists");
      for (const auto& [key, values] : grid.items()) {
        if (!values.is_array() || values.empty()) fail(where + ": grid " + quote(key) + ": expected a non-empty list");
        set_option(study_base, key, values.front(), where);  // the key must exist; the value is checked per cell
        study.axes.push_back(key);
      }
      for (const auto& combination : combinations(grid)) {
        json config = study_base;
        std::map<std::string, std::string> axes;
        for (std::size_t k = 0; k < study.axes.size(); ++k) {
          set_option(config, study.axes[k], *combination[k], where);
          axes[study.axes[k]] = value_text(*combination[k]);
        }
        const TrainConfig c = config_from_json(config, where);
        const std::string name = cell_name(c);
        auto it = std::find_if(e.cells.begin(), e.cells.end(), [&](const Cell& x) { return x.name == name; });
        if (it == e.cells.end()) it = e.cells.insert(e.cells.end(), Cell{name, c, {}, {}});
        it->axes.insert(axes.begin(), axes.end());
        study.cells.push_back(static_cast<std::size_t>(it - e.cells.begin()));
        if (std::find(it->studies.begin(), it->studies.end(), study.name) == it->studies.end()) it->studies.push_back(study.name);
      }
      e.studies.push_back(std::move(study));
    }
  } catch (const json::exception& x) {
    fail(path + ": malformed experiment: " + x.what());
  } catch (const Error& x) {
    fail(path + ": " + x.what());
  }
  return e;
}

std::vector<const Cell*> study_cells(const Experiment& e, const std::string& study) {
  std::vector<const Cell*> out;
  for (const Study& s : e.studies)
    if (s.name == study)
      for (std::size_t i : s.cells) out.push_back(&e.cells[i]);
  return out;
}

Experiment read_experiment_record(const std::string& out) {
  const std::string path = (fs::path(out) / "experiment.json").string();
  if (!fs::exists(path)) fail(out + ": not an experiment folder (no experiment.json)");
  const json record = read_json(path);
  try {
    const std::string config = record.at("config").dump();
    return parse_experiment(std::as_bytes(std::span(config.data(), config.size())), path, record.at("data_dir").get<std::string>());
  } catch (const json::exception& x) {
    fail(path + ": malformed experiment record: " + x.what());
  }
}

void run_experiment(const ExperimentOptions& o) {
  const auto bytes = read_file(o.config);
  const Experiment e = parse_experiment(bytes, o.config, o.data_dir);
  if (o.dry_run) {
    long epochs = 0;
    for (const Cell& c : e.cells) {
      std::string axes;
      for (const auto& [k, v] : c.axes) axes += " " + k + "=" + v;
      std::cout << c.name << (finished(o.out, c) ? " (finished)" : "") << ":" << axes << "\n";
      epochs += c.config.epochs;
    }
    std::cout << grid_size(e) << ", " << epochs << " epochs in all\n";
    return;
  }
  for (const Cell& c : e.cells) check_runs_here(c.config);  // before any cell runs
  fs::create_directories(fs::path(o.out) / "runs");
  json cells = json::array();
  for (const Cell& c : e.cells) cells.push_back({{"name", c.name}, {"studies", c.studies}, {"axes", c.axes}});
  const json record = {{"format", "morphokd-experiment-record"},
                       {"config_file", o.config},
                       {"config_sha256", e.sha256},
                       {"config", parse_json_object(bytes, o.config)},
                       {"data_dir", o.data_dir},
                       {"command", o.command},
                       {"morphokd", version_string()},
                       {"threads", num_threads()},
                       {"cells", cells}};
  write_json_atomic((fs::path(o.out) / "experiment.json").string(), record);

  long epochs = 0, done = 0;
  for (const Cell& c : e.cells)
    if (!finished(o.out, c)) epochs += c.config.epochs;
  std::cout << grid_size(e);
  for (const Cell& c : e.cells) done += finished(o.out, c);
  if (done) std::cout << ", " << done << " already finished";
  std::cout << std::endl;
  // Cells of one part run one after another, so the teacher memo holds their shared maps.
  std::vector<const Cell*> order;
  for (const std::string& part : data::parts())
    for (const Cell& c : e.cells)
      if (c.config.part == part) order.push_back(&c);
  const TeacherMemo memo(kMemoBytes);
  Progress bar("experiment", epochs, "epoch");
  bar.advance(0);
  long index = 0;
  for (const Cell* next : order) {
    const Cell& c = *next;
    ++index;
    if (finished(o.out, c)) continue;
    try {
      run_cell(e, c, o.out);
    } catch (const Error& x) {
      bar.finish();
      fail("cell " + c.name + " (log " + (fs::path(o.out) / "runs" / (c.name + ".log")).string() + "): " + x.what());
    }
    bar.advance(c.config.epochs);
    const json cell = read_json((cell_dir(o.out, c) / "cell.json").string());
    char line[160];
    std::snprintf(line, sizeof line, "[%ld/%zu] %s: valid AUC %.4f, test AUC %.4f, %.0f s", index, e.cells.size(),
                  c.name.c_str(), cell.at("valid_auc").get<double>(), cell.at("test_auc").get<double>(),
                  cell.at("train_seconds").get<double>() + cell.at("eval_seconds").get<double>());
    bar.finish();
    std::cout << line << std::endl;
  }
  bar.finish();
  std::cout << "experiment finished in " << static_cast<long>(bar.seconds()) << " s; report: morphokd report " << o.out << "\n";
}

}  // namespace morphokd::pipeline
