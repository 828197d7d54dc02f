#include "morphokd/pipeline/adversarial.hpp"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "morphokd/data/images.hpp"
#include "morphokd/data/mhsma.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/npy.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/method/localize.hpp"
#include "morphokd/method/metrics.hpp"
#include "morphokd/pipeline/figures.hpp"
#include "morphokd/pipeline/run.hpp"
#include "run_json.hpp"

namespace morphokd::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kMapPercentile = 99.0;
constexpr long kGridCells = 32;

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// [N, 1, H, W] cells as N x H x W (the MHSMA layout).
Tensor as_planes(const Tensor& cells) { return cells.reshape({cells.dim(0), cells.dim(2), cells.dim(3)}); }

}  // namespace

namespace {
// x_adv[i] = FGSM step of cells[i] along g[i], in directions[i] (one entry: every cell).
void step_cells(const Tensor& cells, const Tensor& g, float eps, const std::vector<method::FgsmDirection>& directions,
                Tensor& x_adv) {
  check(directions.size() == 1 || static_cast<Index>(directions.size()) == cells.dim(0), "fgsm: one direction per cell");
  for (Index i = 0; i < cells.dim(0); ++i) {
    Tensor out = x_adv.slice(i, i + 1);
    method::fgsm_step(cells.slice(i, i + 1), g.slice(i, i + 1), eps, directions[directions.size() == 1 ? 0 : static_cast<std::size_t>(i)], out);
  }
}
}  // namespace

Tensor fgsm_cells(Detector& det, const Tensor& cells, float eps, const std::vector<method::FgsmDirection>& directions,
                  Tensor* grad, std::vector<double>* scores) {
  Tensor g;
  std::vector<double> s = det.score_gradient(cells, g);
  Tensor x_adv = Tensor::empty(cells.shape());
  step_cells(cells, g, eps, directions, x_adv);
  if (grad) *grad = g;
  if (scores) *scores = std::move(s);
  return x_adv;
}

std::vector<double> parse_eps_list(const std::string& text) {
  std::vector<double> eps;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size()) fail("--robustness: " + quote(item) + " is not a number");
    method::check_eps(v, "--robustness");
    eps.push_back(v);
  }
  if (eps.empty()) fail("--robustness: no epsilon given");
  return eps;
}

std::vector<std::pair<double, double>> robustness_curve(Detector& det, const Tensor& cells,
                                                        const std::vector<std::uint8_t>& labels,
                                                        const std::vector<double>& eps) {
  std::vector<method::FgsmDirection> against;
  for (std::uint8_t l : labels) against.push_back(l ? method::FgsmDirection::lower : method::FgsmDirection::raise);
  Tensor g;
  det.score_gradient(cells, g);
  std::vector<std::pair<double, double>> curve;
  Tensor x_adv = Tensor::empty(cells.shape());
  for (double e : eps) {
    step_cells(cells, g, static_cast<float>(e), against, x_adv);
    curve.emplace_back(e, metrics::roc_auc(det.score(x_adv), labels));
  }
  return curve;
}

AttackResult attack_cells(const AttackOptions& o) {
  method::check_eps(o.eps, "--eps");
  const method::FgsmDirection direction = method::parse_direction(o.direction);
  if (!o.figure.empty() && !figures_available()) fail("--figure: PNG figures need a build with MORPHOKD_WITH_OPENCV=ON");
  const RunInfo run = read_run(o.run_dir);
  auto det = open_detector(o.run_dir, run);
  const Tensor cells = data::load_cells(o.input).cells;
  if (!o.figure.empty() && (o.figure_index < 0 || o.figure_index >= cells.dim(0)))
    fail("--figure-index: " + std::to_string(o.figure_index) + " is not a cell of " + o.input);
  Tensor grad;
  AttackResult r;
  const Tensor x_adv = fgsm_cells(*det, cells, static_cast<float>(o.eps), {direction}, &grad, &r.before);
  r.after = det->score(x_adv);
  if (!o.figure.empty()) {
    const Index i = o.figure_index, hw = cells.dim(2) * cells.dim(3);
    write_fgsm_png(o.figure, cells.data() + i * hw, grad.data() + i * hw, x_adv.data() + i * hw, cells.dim(2), cells.dim(3),
                   "score " + fmt("%.4f", r.before[static_cast<std::size_t>(i)]),
                   "eps " + fmt("%g", o.eps) + ": " + fmt("%.4f", r.after[static_cast<std::size_t>(i)]));
  }
  write_npy(o.out, as_planes(x_adv));
  return r;
}

long localize_cells(const LocalizeOptions& o) {
  const method::MapMethod how = method::parse_map_method(o.method);
  if (o.channels != "gray" && o.channels != "mkd") fail("--channels: unknown " + quote(o.channels) + " (expected gray or mkd)");
  method::check_map_options(o.n, o.sigma_noise, o.blur_sigma);
  if (o.limit < 0) fail("--limit must be >= 0");
  if (o.input.empty() == o.split.empty()) fail("localize: give either --input or --split");
  if (o.label < -1 || o.label > 1) fail("--label must be 0 or 1");
  const RunInfo run = read_run(o.run_dir);

  Tensor cells;
  std::vector<std::int64_t> ids;  // row of each cell in the input
  std::string source;
  if (!o.split.empty()) {
    const data::LabelledCells split = data::load_mhsma(run.config.data_dir, o.split, run.config.part);
    for (std::size_t i = 0; i < split.labels.size(); ++i)
      if (o.label < 0 || split.labels[i] == o.label) ids.push_back(static_cast<std::int64_t>(i));
    if (ids.empty()) fail(split.y_path + ": no cells with label " + std::to_string(o.label));
    cells = data::gather(split.cells, ids);
    source = split.x_path;
  } else {
    cells = data::load_cells(o.input).cells;
    for (Index i = 0; i < cells.dim(0); ++i) ids.push_back(i);
    source = o.input;
  }
  if (o.limit > 0 && o.limit < cells.dim(0)) {
    cells = cells.slice(0, o.limit).clone();
    ids.resize(static_cast<std::size_t>(o.limit));
  }
  StagedDirectory out(o.out);
  auto det = open_detector(o.run_dir, run, o.channels == "mkd" ? 3 : 0);
  det->set_guided(how == method::MapMethod::gbp);
  const bool per_channel = o.channels == "mkd";
  Tensor grad;
  std::vector<double> scores;
  if (how == method::MapMethod::smoothgrad) {
    scores = det->score(cells);
    method::smoothgrad(cells, ids, o.n, o.sigma_noise, o.seed,
                       [&](const Tensor& c, Tensor& g) { det->score_gradient(c, g, per_channel); }, grad);
  } else {
    scores = det->score_gradient(cells, grad, per_channel);
  }
  Tensor maps, shown = Tensor::empty({cells.dim(0), cells.dim(2), cells.dim(3)});
  method::saliency(grad, maps);
  const Index h = cells.dim(2), w = cells.dim(3);
  const bool png = figures_available();
  if (!png) std::cerr << "morphokd: note: built without OpenCV: no PNG overlays, raw maps only\n";
  json list = json::array();
  std::vector<std::string> captions;
  for (Index i = 0; i < cells.dim(0); ++i) {
    const std::string stem = std::to_string(ids[static_cast<std::size_t>(i)]);
    const Tensor map = maps.slice(i, i + 1).reshape({h, w});
    write_npy((out.path() / (stem + ".npy")).string(), map);
    method::postprocess_map(map.data(), h, w, kMapPercentile, o.blur_sigma, shown.data() + i * h * w);
    if (png) write_overlay_png((out.path() / (stem + ".png")).string(), cells.data() + i * h * w, shown.data() + i * h * w, h, w);
    captions.push_back("#" + stem + " score " + fmt("%.3f", scores[static_cast<std::size_t>(i)]));
    list.push_back({{"index", ids[static_cast<std::size_t>(i)]}, {"score", scores[static_cast<std::size_t>(i)]}});
  }
  if (png) {
    const Index g = std::min<Index>(cells.dim(0), kGridCells);
    captions.resize(static_cast<std::size_t>(g));
    write_map_grid_png((out.path() / "grid.png").string(), as_planes(cells).slice(0, g), shown.slice(0, g), captions, 4);
  }
  const json meta = {{"run", o.run_dir},
                     {"student_sha256", run.student_sha256},
                     {"teacher_sha256", run.teacher_sha256},
                     {"input", source},
                     {"input_sha256", sha256_file(source)},
                     {"split", o.split},
                     {"label", o.label},
                     {"method", o.method},
                     {"n", o.n},
                     {"sigma_noise", o.sigma_noise},
                     {"seed", o.seed},
                     {"channels", o.channels},
                     {"score", run.rule.combine},
                     {"tta", run.rule.tta()},
                     {"score_critical", method::layers_string(run.config.score_layers)},
                     {"postprocess", {{"percentile", kMapPercentile}, {"blur_sigma", o.blur_sigma}}},
                     {"cells", list}};
  write_json_atomic((out.path() / "localize.json").string(), meta);
  out.commit();
  return static_cast<long>(cells.dim(0));
}

}  // namespace morphokd::pipeline
