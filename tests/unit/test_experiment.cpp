// Experiment files (grid expansion, shared cells, every refusal) and the report, built here
// from fabricated cell results whose numbers the test computes by its own formulas.
#define BOOST_TEST_MODULE experiment
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "morphokd/error.hpp"
#include "morphokd/method/metrics.hpp"
#include "morphokd/models/students.hpp"
#include "morphokd/models/teacher.hpp"
#include "morphokd/models/vgg.hpp"
#include "morphokd/pipeline/detector.hpp"
#include "morphokd/pipeline/experiment.hpp"
#include "morphokd/pipeline/figures.hpp"
#include "morphokd/pipeline/report.hpp"
#include "morphokd/random.hpp"
#include "support.hpp"
#include "support/oracles.hpp"

namespace fs = std::filesystem;
namespace p = morphokd::pipeline;
using nlohmann::json;

namespace {

// Every analysis, at a size the report test can fabricate quickly.
json grid_config() {
  return json::parse(R"({
    "format": "morphokd-experiment", "format_version": 1, "description": "unit test grid",
    "train": {"epochs": 2, "tta": "none", "augment": "none"},
    "eval": {"bootstrap": 200},
    "studies": [
      {"name": "main", "analyses": ["table2", "table3", "table4", "table5", "fig5", "fig13", "roc"],
       "grid": {"part": ["head", "vacuole"], "seed": [0, 1]}},
      {"name": "lambda", "analyses": ["table6"], "grid": {"part": ["head"], "lambda": [0.01, 0.1]}},
      {"name": "students", "analyses": ["table7", "fig15"], "grid": {"part": ["head"], "student": ["A", "B"]}},
      {"name": "critical", "analyses": ["table8"], "grid": {"part": ["head"], "critical": ["4,5", "2,3,4,5"]}},
      {"name": "robust", "analyses": ["table9"], "grid": {"part": ["head"], "augment": ["none", "flip"], "fgsm_eps": [0, 0.01]}},
      {"name": "precision", "analyses": ["precision"], "grid": {"part": ["head"], "precision": ["fp32", "fp32-winograd", "bf16"]}}
    ]})");
}

p::Experiment parse(const json& j, const std::string& data = "") {
  const std::string text = j.dump();
  return p::parse_experiment(std::as_bytes(std::span(text.data(), text.size())), "exp.json", data);
}

// The message of the Error parse() raises, or "" when it accepts.
std::string refusal(const json& j) {
  try {
    parse(j);
  } catch (const morphokd::Error& e) {
    return e.what();
  }
  return "";
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

json classification(const morphokd::metrics::Classification& m) {
  return {{"accuracy", m.accuracy}, {"precision", m.precision}, {"recall", m.recall}, {"f1", m.f1},
          {"f05", m.f05},           {"gmean", m.gmean},         {"mcc", m.mcc},       {"tp", m.counts.tp},
          {"fp", m.counts.fp},      {"tn", m.counts.tn},        {"fn", m.counts.fn}};
}

std::string g17(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

struct Fabricated {
  std::vector<double> scores;
  std::vector<std::uint8_t> labels;
  double test_auc = 0;
};

// A finished cell as experiment.cpp leaves it, from seeded random scores whose per-layer
// terms sum to the score; the AUCs are the test's own pair counts.
Fabricated fabricate(const fs::path& dir, const p::Cell& c, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  Fabricated f;
  const std::size_t layers = c.config.score_layers.size();
  std::string csv = "index,label,score";
  for (int k : c.config.score_layers) csv += ",term_pool" + std::to_string(k);
  csv += "\n";
  for (int i = 0; i < 60; ++i) {
    const std::uint8_t y = i % 3 == 0;
    std::vector<double> terms(layers);
    double score = 0;
    for (std::size_t k = 0; k < layers; ++k) score += terms[k] = 1.0 + 0.1 * static_cast<double>(k) + 0.3 * noise(rng) + 0.5 * y;
    f.scores.push_back(score);
    f.labels.push_back(y);
    csv += std::to_string(i) + "," + std::to_string(y) + "," + g17(score);
    for (double t : terms) csv += "," + g17(t);
    csv += "\n";
  }
  f.test_auc = morphokd::test::auc_pairs(f.scores, f.labels);
  const double threshold = 3.0;
  namespace m = morphokd::metrics;
  const json test = {{"n", f.scores.size()},
                     {"auc", f.test_auc},
                     {"threshold", threshold},
                     {"abnormal_positive", classification(m::classify(m::confusion(f.scores, f.labels, threshold, true)))},
                     {"normal_positive", classification(m::classify(m::confusion(f.scores, f.labels, threshold, false)))}};
  fs::create_directories(dir);
  write_text(dir / "scores_test.csv", csv);
  write_text(dir / "eval_test.json", test.dump());
  write_text(dir / "eval_valid.json", json{{"auc", f.test_auc - 0.01}}.dump());
  write_text(dir / "run.json", json{{"student", {{"parameters", c.config.student == "A" ? 1000 : 2000}}}}.dump());
  write_text(dir / "cell.json", json{{"train_seconds", 30.0}, {"eval_seconds", 6.0}}.dump());
  return f;
}

// An experiment folder with every cell fabricated; returns each cell's results by name.
std::map<std::string, Fabricated> fabricate_experiment(const fs::path& out) {
  fs::remove_all(out);
  fs::create_directories(out / "runs");
  const json config = grid_config();
  write_text(out / "experiment.json",
             json{{"format", "morphokd-experiment-record"}, {"config", config}, {"data_dir", ""}, {"command", "morphokd experiment (test)"}}.dump());
  std::map<std::string, Fabricated> cells;
  unsigned seed = 1;
  for (const p::Cell& c : parse(config).cells) cells[c.name] = fabricate(out / "runs" / c.name, c, seed++);
  return cells;
}

// The row of the Markdown table line starting with "| first |", split into cells.
std::vector<std::string> table_row(const std::string& md, const std::string& after_heading, const std::string& first) {
  const std::size_t at = md.find(after_heading);
  BOOST_REQUIRE(at != std::string::npos);
  const std::size_t row = md.find("| " + first + " |", at);
  BOOST_REQUIRE(row != std::string::npos);
  std::istringstream line(md.substr(row + 1, md.find('\n', row) - row - 1));
  std::vector<std::string> cells;
  for (std::string c; std::getline(line, c, '|');) cells.push_back(c.substr(1, c.size() - 2));
  return cells;
}

std::string fixed(double v, int digits) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

}  // namespace

BOOST_AUTO_TEST_CASE(grid_expands_and_shares_cells) {
  const p::Experiment e = parse(grid_config(), "/data/x");
  // main 4, lambda 2 (0.01 = main's head seed 0), students 2 (B = main's), critical 2
  // (2,3,4,5 = main's), robust 4 (none/0 = main's), precision 3 (fp32 = main's):
  // 4 + 1 + 1 + 1 + 3 + 2 distinct cells.
  BOOST_TEST(e.cells.size() == 12u);
  BOOST_TEST(e.studies.size() == 6u);
  BOOST_TEST(p::study_cells(e, "main").size() == 4u);
  BOOST_TEST(p::study_cells(e, "robust").size() == 4u);
  const p::Cell& shared = *p::study_cells(e, "main").front();
  BOOST_TEST(shared.name.starts_with("head-B-s0-"));
  BOOST_TEST(shared.name.size() == std::string("head-B-s0-").size() + 8);
  BOOST_TEST(shared.studies.size() == 6u);  // the default head cell is in every study
  // Its name from before `precision` existed (a finished cell must stay finished).
  BOOST_TEST(shared.name == "head-B-s0-de5470ab");
  BOOST_TEST(shared.config.data_dir == "/data/x");
  BOOST_TEST(shared.config.epochs == 2);
  const p::Cell& critical = *p::study_cells(e, "critical").front();
  BOOST_TEST(critical.config.train_layers == (std::vector<int>{4, 5}));
  BOOST_TEST(critical.config.score_layers == (std::vector<int>{4, 5}));
  BOOST_TEST(critical.axes.at("critical") == "4,5");
  // Names ignore the data folder and stay the same from one reading to the next.
  BOOST_TEST(parse(grid_config()).cells.front().name == e.cells.front().name);
  json other = grid_config();
  other["train"]["epochs"] = 3;
  BOOST_TEST(parse(other).cells.front().name != e.cells.front().name);
}

BOOST_AUTO_TEST_CASE(refusals_name_the_file_and_the_problem) {
  auto with = [](const std::string& pointer, const json& v) {
    json j = grid_config();
    j[json::json_pointer(pointer)] = v;
    return j;
  };
  const std::vector<std::pair<json, std::string>> cases{
      {with("/format", "other"), "not a morphokd experiment"},
      {with("/format_version", 2), "format_version 2"},
      {with("/train/colour", 1), "unknown training option 'colour'"},
      {with("/train/data_dir", "x"), "unknown training option 'data_dir'"},
      {with("/train/epochs", 0), "--epochs must be at least 1"},
      {with("/eval/bootstrap", 10), "bootstrap must be at least 100"},
      {with("/eval/threshold_rule", "best"), "unknown rule"},
      {with("/studies", json::array()), "studies: expected a non-empty list"},
      {with("/studies/0/analyses/0", "table1"), "unknown analysis 'table1'"},
      {with("/studies/1/name", "main"), "named twice"},
      {with("/studies/1/name", "Big Name"), "lower-case letters"},
      {with("/studies/0/grid/seed", json::array()), "grid 'seed': expected a non-empty list"},
      {with("/studies/0/grid", json::object()), "grid: expected an object"},
      {with("/studies/2/grid/student", {"Z"}), "study 'students'"},
      {with("/studies/0/grid/lambda", {-1}), "--lambda must be >= 0"},
      {with("/studies/0/grid/part", {"neck"}), "neck"},
      {with("/studies/0/grid/epochs", {"five"}), "expected an integer"},
  };
  for (const auto& [j, expected] : cases) {
    const std::string message = refusal(j);
    BOOST_TEST_INFO("expected: " << expected << ", got: " << message);
    BOOST_TEST((message.starts_with("exp.json: ") && message.find(expected) != std::string::npos && message.find('\n') == std::string::npos));
  }
  const std::string bad = "{\"format\": ";
  BOOST_CHECK_EXCEPTION(p::parse_experiment(std::as_bytes(std::span(bad.data(), bad.size())), "exp.json", ""), morphokd::Error,
                        [](const morphokd::Error& e) { return std::string(e.what()).starts_with("exp.json: "); });
}

BOOST_AUTO_TEST_CASE(report_tables_match_independent_numbers) {
  const fs::path out = fs::temp_directory_path() / "morphokd_test_report";
  const std::map<std::string, Fabricated> cells = fabricate_experiment(out);
  const std::string path = p::write_report({out.string(), "", "", "morphokd report (test)"});
  BOOST_TEST(path == (out / "report" / "report.md").string());
  const std::string md = read_text(path);
  for (const char* label : {"## Table 2", "## Table 3", "## Table 4", "## Fig. 5", "## Fig. 13 and Table 5", "## Table 6",
                            "## Fig. 15 and Table 7", "## Table 8", "## Table 9", "## The teacher's precision against fp32", "## ROC", "## Commands"})
  {
    BOOST_TEST_INFO(label);
    BOOST_TEST(md.find(label) != std::string::npos);
  }
  if (p::figures_available())
    for (const char* png : {"fig5_head.png", "fig5_vacuole.png", "fig13_head.png", "roc.png", "fig15_students.png"})
    {
      BOOST_TEST_INFO(png);
      BOOST_TEST(fs::file_size(out / "report" / png) > 1000u);
    }

  const p::Experiment e = parse(grid_config());
  const std::vector<const p::Cell*> main = p::study_cells(e, "main");
  // Table 2, head: AUC mean ± sd over the two seeds (sample sd), by hand.
  const double a0 = cells.at(main[0]->name).test_auc, a1 = cells.at(main[1]->name).test_auc;
  BOOST_REQUIRE(main[0]->config.part == "head" && main[1]->config.part == "head");
  const double mean = (a0 + a1) / 2, sd = std::fabs(a0 - a1) / std::sqrt(2.0);
  BOOST_TEST(table_row(md, "## Table 2", "head (2)")[8] == fixed(mean, 3) + " ± " + fixed(sd, 3));

  // Table 5, head: the one-way ANOVA of normal vs abnormal scores of the first seed, by hand:
  // F = SSB / (SSW / (N - 2)) for two groups.
  const Fabricated& f = cells.at(main[0]->name);
  double sum[2] = {0, 0}, n[2] = {0, 0};
  for (std::size_t i = 0; i < f.scores.size(); ++i) sum[f.labels[i]] += f.scores[i], n[f.labels[i]] += 1;
  const double m0 = sum[0] / n[0], m1 = sum[1] / n[1], grand = (sum[0] + sum[1]) / (n[0] + n[1]);
  double ssw = 0;
  for (std::size_t i = 0; i < f.scores.size(); ++i) ssw += std::pow(f.scores[i] - (f.labels[i] ? m1 : m0), 2);
  const double ssb = n[0] * std::pow(m0 - grand, 2) + n[1] * std::pow(m1 - grand, 2);
  const std::vector<std::string> row = table_row(md, "## Fig. 13 and Table 5", "head");
  BOOST_TEST(row[5] == fixed(ssb / (ssw / (n[0] + n[1] - 2)), 3));
  BOOST_TEST(row[6] == "1, 58");

  // Table 7: parameters of the fabricated students; Table 9 has its four settings.
  BOOST_TEST(table_row(md, "## Fig. 15 and Table 7", "student A")[1] == "1000");
  BOOST_TEST(table_row(md, "## Table 9", "augment flip, fgsm_eps 0.01").size() == 2u);

  // Each precision against fp32: the change in test AUC, in points.
  const std::vector<const p::Cell*> precision = p::study_cells(e, "precision");
  BOOST_REQUIRE(precision.size() == 3u);
  for (std::size_t k : {1, 2}) {
    const std::string name = precision[k]->config.precision;
    BOOST_TEST(name == (k == 1 ? "fp32-winograd" : "bf16"));
    const double delta = 100 * (cells.at(precision[k]->name).test_auc - cells.at(precision[0]->name).test_auc);
    BOOST_TEST(table_row(md, "## The teacher's precision", "Δ test AUC, precision " + name + " − precision fp32 (points)")[1] ==
               fixed(delta, 2));
  }

  // The same files give the same report, byte for byte, replacing the previous one.
  p::write_report({out.string(), "", "", "morphokd report (test)"});
  BOOST_TEST(read_text(path) == md);
}

BOOST_AUTO_TEST_CASE(report_refuses_unfinished_cells_and_keeps_the_old_one) {
  const fs::path out = fs::temp_directory_path() / "morphokd_test_report_unfinished";
  fabricate_experiment(out);
  p::write_report({out.string(), "", "", ""});
  const std::string before = read_text(out / "report" / "report.md");
  const p::Experiment e = parse(grid_config());
  const p::Cell& c = e.cells.back();
  fs::remove(out / "runs" / c.name / "cell.json");
  BOOST_CHECK_EXCEPTION(p::write_report({out.string(), "", "", ""}), morphokd::Error, [&](const morphokd::Error& e) {
    return std::string(e.what()).find("cell " + c.name + " is not finished") != std::string::npos;
  });
  BOOST_TEST(read_text(out / "report" / "report.md") == before);
  BOOST_CHECK_THROW(p::write_report({(out / "nothing").string(), "", "", ""}), morphokd::Error);
}

BOOST_AUTO_TEST_CASE(readme_section_is_replaced_between_markers) {
  const std::string begin = "<!-- morphokd report: begin -->", end = "<!-- morphokd report: end -->";
  // Markers quoted inside a line are text, not markers.
  const std::string text = "# T\n\nsee `" + begin + "`\n" + begin + "\nold\nlines\n" + end + "\ntail\n";
  BOOST_TEST(p::replace_report_section(text, "new\n", "R.md") == "# T\n\nsee `" + begin + "`\n" + begin + "\nnew\n" + end + "\ntail\n");
  for (const std::string& bad : {std::string("no markers\n"), end + "\n" + begin + "\n", begin + "\n" + begin + "\n" + end + "\n"})
    BOOST_CHECK_EXCEPTION(p::replace_report_section(bad, "x\n", "R.md"), morphokd::Error,
                          [](const morphokd::Error& e) { return std::string(e.what()).starts_with("R.md: needs one line"); });

  const fs::path out = fs::temp_directory_path() / "morphokd_test_report_readme";
  fabricate_experiment(out);
  const fs::path readme = out / "README.md";
  write_text(readme, text);
  p::write_report({out.string(), (out / "results").string(), readme.string(), ""});
  const std::string updated = read_text(readme);
  BOOST_TEST(updated.starts_with("# T\n\nsee `" + begin + "`\n" + begin + "\n"));
  BOOST_TEST(updated.ends_with(end + "\ntail\n"));
  BOOST_TEST(updated.find("\n#### Table 2") != std::string::npos);  // two heading levels down
  BOOST_TEST(updated.find("# morphokd experiment report") == std::string::npos);
  if (p::figures_available()) BOOST_TEST(updated.find("](results/roc.png)") != std::string::npos);
}

// The teacher memo an experiment turns on: the same terms, bit for bit, with it off, on and
// hit; maps shared on a hit; another cell, transform or too small a budget is a miss.
BOOST_AUTO_TEST_CASE(teacher_memo_changes_no_bit) {
  namespace models = morphokd::models;
  auto detector = [](const std::string& input) {
    auto student = models::vgg_features(models::student_spec("B"), 3);
    models::init_weights(*student, 3);
    return p::Detector(models::open_teacher("random:0", 1), std::move(student), models::student_spec("B"),
                       morphokd::method::DistillConfig{{2, 3, 4, 5}, {3, 4, 5}, 0.01f},
                       morphokd::data::InputTransform::parse(input), morphokd::method::ScoreRule::parse("sum", "flip"));
  };
  morphokd::Tensor cells = morphokd::Tensor::empty({70, 1, 64, 64});  // two batches, the second partial
  for (morphokd::Index i = 0; i < cells.numel(); ++i)
    cells.data()[i] = static_cast<float>(morphokd::uniform01(5, static_cast<std::uint64_t>(i)));
  p::Detector det = detector("image");
  BOOST_REQUIRE(p::teacher_memo_budget() == 0);
  const std::vector<double> off = det.layer_terms(cells, true);
  p::set_teacher_memo_budget(1e9);
  const std::vector<double> first = det.layer_terms(cells, true), hit = det.layer_terms(cells, true);
  BOOST_TEST(first == off);
  BOOST_TEST(hit == off);
  const std::vector<int> pools{3, 4, 5};
  const morphokd::PackedRows shared = det.cache_teacher_maps(cells, pools)[0];
  BOOST_TEST(det.cache_teacher_maps(cells, pools)[0].shares(shared));  // a hit hands out the same maps
  BOOST_TEST(detector("image").cache_teacher_maps(cells, pools)[0].shares(shared));  // another detector, same teacher
  BOOST_TEST(!detector("none").cache_teacher_maps(cells, pools)[0].shares(shared));  // another transform
  morphokd::Tensor changed = cells.clone();
  changed.data()[123] += 0.25f;
  BOOST_TEST(!det.cache_teacher_maps(changed, pools)[0].shares(shared));  // another cell
  p::set_teacher_memo_budget(1e6);  // smaller than one entry: nothing kept
  BOOST_TEST(!det.cache_teacher_maps(cells, pools)[0].shares(det.cache_teacher_maps(cells, pools)[0]));
  p::set_teacher_memo_budget(0);
  BOOST_TEST(det.layer_terms(cells, true) == off);
  // A caller's cache of the unflipped cells (training's validation) gives the same terms.
  const std::vector<morphokd::PackedRows> unflipped = det.cache_teacher_maps(cells, det.distill().score_layers);
  BOOST_TEST(det.layer_terms(cells, false, &unflipped) == det.layer_terms(cells, false));
  // Smaller batches (training's validation and calibration) give the same terms too.
  BOOST_TEST(det.layer_terms(cells, true, nullptr, p::Detector::kLeanBatch) == off);
  BOOST_TEST(det.layer_terms(cells, false, &unflipped, p::Detector::kLeanBatch) == det.layer_terms(cells, false));
}

// Training from cached maps frees the teacher's weights; its next use reopens them, the same
// bits, unless the file changed meanwhile.
BOOST_AUTO_TEST_CASE(released_teacher_comes_back_or_names_the_changed_file) {
  namespace models = morphokd::models;
  const fs::path file = fs::temp_directory_path() / "morphokd_test_released_teacher.safetensors";
  morphokd::SafetensorsFile weights = models::teacher_state_dict("random:4");
  morphokd::write_safetensors(file.string(), weights);
  auto student = models::vgg_features(models::student_spec("A"), 3);
  p::Detector det(models::open_teacher(file.string(), 1), std::move(student), models::student_spec("A"),
                  morphokd::method::DistillConfig{{3, 4}, {3, 4}, 0.01f}, morphokd::data::InputTransform::parse("image"));
  morphokd::Tensor gray = morphokd::Tensor::empty({2, 1, 64, 64});
  for (morphokd::Index i = 0; i < gray.numel(); ++i) gray.data()[i] = static_cast<float>(morphokd::uniform01(6, static_cast<std::uint64_t>(i)));
  const std::vector<int> pools{3, 4};
  const std::vector<morphokd::Tensor> before = det.teacher_maps(gray, pools);
  det.release_teacher();
  BOOST_TEST(det.teacher().net->output_shape({1, 1, 64, 64}, 4) == morphokd::Shape({1, 64, 32, 32}));  // shapes stay
  const std::vector<morphokd::Tensor> after = det.teacher_maps(gray, pools);
  for (std::size_t l = 0; l < pools.size(); ++l)
    BOOST_TEST(std::memcmp(after[l].data(), before[l].data(), sizeof(float) * static_cast<std::size_t>(before[l].numel())) == 0);
  det.release_teacher();
  weights.tensors.at("features.28.bias").values.data()[0] += 1.0f;
  morphokd::write_safetensors(file.string(), weights);
  morphokd::test::expect_error([&] { det.teacher_maps(gray, pools); }, {file.string(), "changed during the run", "SHA-256"});
  fs::remove(file);
}
