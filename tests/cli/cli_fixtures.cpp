// Test-time helper for the CLI tests (no PyTorch needed):
//   cli_fixtures make DIR             deterministic VGG16 weights, inputs, and broken variants
//   cli_fixtures compare A B TOL      two dump directories agree: max|a-b|/max|a| <= TOL per file
//   cli_fixtures check-eval RUN SPLIT eval_SPLIT.json recomputed independently from scores_SPLIT.csv
//   cli_fixtures check-replay RUN GOLDEN SCORES.csv   the audit replay against PyTorch (rule below)
//   cli_fixtures check-teacher FILE   a pretrained teacher is plain VGG16: torchvision names and shapes, finite
//   cli_fixtures check-fgsm X XADV EPS  attacked cells: float32 N x H x W in [0, 1], |xadv - x| <= eps, some moved
//   cli_fixtures check-maps DIR N     N raw maps DIR/*.npy: float32 64 x 64, finite, >= 0, not all zero
//   cli_fixtures check-audit AUDIT CSV  one complete audit line per CSV row: same score (and terms,
//                                     call), terms summing to the score under `sum`, distinct cell hashes
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "morphokd/data/mhsma.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/npy.hpp"
#include "morphokd/models/students.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/random.hpp"
#include "support/oracles.hpp"

using namespace morphokd;
namespace fs = std::filesystem;

namespace {
void make(const fs::path& dir) {
  fs::create_directories(dir);
  auto net = models::vgg16_features();
  for (auto& [name, p] : net->named_parameters())
    for (Index i = 0; i < p->value.numel(); ++i)
      p->value.data()[i] = static_cast<float>((2 * uniform01(name.size() * 31 + p->value.numel(), i) - 1) * 0.05);
  SafetensorsFile sd = net->state_dict();
  sd.tensors["classifier.0.bias"] = {StDType::f32, Tensor::zeros({4}), {}, {4}};  // ignored by forward
  write_safetensors((dir / "vgg16.safetensors").string(), sd);

  const auto bytes = encode_safetensors(sd);
  write_file_atomic((dir / "truncated.safetensors").string(), std::span(bytes).first(bytes.size() - 100));
  SafetensorsFile missing = sd;
  missing.tensors.erase("features.28.bias");
  write_safetensors((dir / "missing.safetensors").string(), missing);
  SafetensorsFile wrong = sd;
  wrong.tensors["features.2.weight"] = {StDType::f32, Tensor::zeros({64, 64, 1, 1}), {}, {64, 64, 1, 1}};
  write_safetensors((dir / "wrongshape.safetensors").string(), wrong);

  Tensor x = Tensor::empty({2, 3, 32, 40});
  for (Index i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(uniform01(5, i));
  write_npy((dir / "x.npy").string(), x);
  x.data()[17] = NAN;
  write_npy((dir / "nan.npy").string(), x);
  write_npy((dir / "rank2.npy").string(), Tensor::zeros({32, 32}));
  Tensor nan_cells = Tensor::full({2, 64, 64}, 0.5f);
  nan_cells.data()[4100] = NAN;
  write_npy((dir / "nan_cells.npy").string(), nan_cells);
  // MHSMA layout: uint8 gray cells N x 64 x 64.
  std::string hdr = "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 64, 64), }";
  hdr.append(117 - hdr.size(), ' ');
  hdr += '\n';
  std::string cells = std::string("\x93NUMPY\x01\x00", 8) + char(hdr.size()) + char(0) + hdr;
  for (int i = 0; i < 4 * 64 * 64; ++i) cells += char((i * 37) % 256);
  write_file_atomic((dir / "cells_u8.npy").string(), std::as_bytes(std::span(cells.data(), cells.size())));
  Tensor rgb = Tensor::empty({3, 3, 64, 64});
  for (Index n = 0; n < 3; ++n)
    for (Index c = 0; c < 3; ++c)
      for (Index j = 0; j < 64 * 64; ++j)
        rgb.data()[(n * 3 + c) * 4096 + j] = static_cast<float>(((n * 4096 + j) * 37) % 256) * (1.0f / 255.0f);
  write_npy((dir / "cells_rgb.npy").string(), rgb);
  write_npy((dir / "small.npy").string(), Tensor::zeros({1, 3, 16, 16}));
  write_npy((dir / "gray.npy").string(), Tensor::zeros({1, 1, 32, 32}));
  const auto xb = encode_npy(Tensor::zeros({1, 3, 32, 32}));
  write_file_atomic((dir / "truncated.npy").string(), std::span(xb).first(xb.size() - 7));
}

int compare(const fs::path& a, const fs::path& b, double tol) {
  int files = 0;
  double worst = 0;
  for (const auto& e : fs::directory_iterator(a)) {
    if (e.path().extension() != ".npy") continue;
    const Tensor ta = read_npy(e.path().string());
    const Tensor tb = read_npy((b / e.path().filename()).string());
    if (!(ta.shape() == tb.shape())) {
      std::cerr << e.path().filename() << ": shapes differ\n";
      return 1;
    }
    worst = std::max(worst, test::rel_error(tb, ta));  // A is the reference
    ++files;
  }
  std::cout << files << " files, worst rel " << worst << " (tol " << tol << ")\n";
  return files > 0 && worst <= tol ? 0 : 1;
}
// An independent recomputation: O(n^2) pair counting for the AUC, direct counting for the
// confusion matrices, textbook formulas for the rest.
int check_audit(const std::string& audit, const std::string& csv_path) {
  std::ifstream csv(csv_path), lines(audit);
  std::string header, row, text;
  std::getline(csv, header);
  std::vector<std::string> columns;
  for (std::stringstream hs(header); std::getline(hs, text, ',');) columns.push_back(text);
  std::set<std::string> cell_hashes;
  std::size_t i = 0;
  int bad = 0;
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) std::cerr << "line " << i << ": " << what << "\n", ++bad;
  };
  for (; std::getline(csv, row); ++i) {
    if (!std::getline(lines, text)) return std::cerr << audit << ": fewer lines than " << csv_path << " rows\n", 1;
    std::map<std::string, std::string> cell;
    std::stringstream rs(row);
    for (const std::string& c : columns) std::getline(rs, cell[c], ',');
    const nlohmann::json j = nlohmann::json::parse(text);
    for (const char* k : {"morphokd", "build", "command", "teacher", "student_sha256", "score_rule", "threshold",
                          "threshold_rule", "terms", "score", "call", "deterministic", "onednn_fpmath"})
      expect(j.contains(k), std::string("no ") + k);
    if (bad) return 1;
    const nlohmann::json& in = j.at("input");
    expect(in.at("index").get<std::size_t>() == i, "index");
    expect(in.at("cell_sha256").get<std::string>().size() == 64, "cell_sha256");
    expect(in.at("sha256").get<std::string>().size() == 64, "input sha256");
    cell_hashes.insert(in.at("cell_sha256").get<std::string>());
    const double score = j.at("score").get<double>();
    expect(score == std::stod(cell.at("score")), "score differs from the CSV's");
    double sum = 0;
    for (const auto& [pool, v] : j.at("terms").items()) {
      sum += v.get<double>();
      if (cell.count("term_" + pool)) expect(v.get<double>() == std::stod(cell.at("term_" + pool)), pool + " differs from the CSV's");
    }
    if (j.at("score_rule").at("combine") == "sum") expect(std::fabs(sum - score) <= 1e-12 * std::fabs(score), "terms do not sum to the score");
    const nlohmann::json& t = j.at("threshold");
    const double threshold = t.is_string() ? (t == "-inf" ? -HUGE_VAL : HUGE_VAL) : t.get<double>();
    expect(j.at("call") == (score > threshold ? "abnormal" : "normal"), "call");
    if (cell.count("call")) expect(j.at("call") == cell.at("call"), "call differs from the CSV's");
  }
  if (std::getline(lines, text)) return std::cerr << audit << ": more lines than " << csv_path << " rows\n", 1;
  if (cell_hashes.size() != i) std::cerr << "cell hashes not distinct\n", ++bad;
  if (bad == 0) std::cout << i << " audit lines check\n";
  return bad ? 1 : 0;
}

int check_eval(const std::string& run, const std::string& split) {
  std::ifstream csv(run + "/scores_" + split + ".csv");
  std::string line;
  std::getline(csv, line);
  if (line.rfind("index,label,score", 0) != 0) return std::cerr << "bad CSV header\n", 1;  // then term_poolK columns
  std::vector<int> labels;
  std::vector<double> scores;
  while (std::getline(csv, line)) {
    std::stringstream ss(line);
    std::string idx, lab, sc;
    std::getline(ss, idx, ',');
    std::getline(ss, lab, ',');
    std::getline(ss, sc, ',');
    if (std::stoul(idx) != labels.size()) return std::cerr << "index out of order\n", 1;
    labels.push_back(std::stoi(lab));
    scores.push_back(std::stod(sc));
  }
  std::ifstream jf(run + "/eval_" + split + ".json");
  const nlohmann::json j = nlohmann::json::parse(jf);
  const double auc = test::auc_pairs(scores, labels);
  int bad = 0;
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) std::cerr << "mismatch: " << what << "\n", ++bad;
  };
  expect(j.at("n").get<std::size_t>() == scores.size(), "n");
  expect(std::fabs(j.at("auc").get<double>() - auc) <= 1e-6, "auc " + std::to_string(auc));
  const nlohmann::json& t = j.at("threshold");
  const double threshold = t.is_string() ? -HUGE_VAL : t.get<double>();
  for (const char* conv : {"abnormal_positive", "normal_positive"}) {
    const bool ab = std::string(conv) == "abnormal_positive";
    long tp = 0, fp = 0, tn = 0, fn = 0;
    for (std::size_t i = 0; i < scores.size(); ++i) {
      const bool called_abnormal = scores[i] > threshold, positive = ab ? labels[i] == 1 : labels[i] == 0;
      const bool called_positive = ab ? called_abnormal : !called_abnormal;
      (called_positive ? (positive ? tp : fp) : (positive ? fn : tn)) += 1;
    }
    const nlohmann::json& m = j.at(conv);
    expect(m.at("tp") == tp && m.at("fp") == fp && m.at("tn") == tn && m.at("fn") == fn, std::string(conv) + " counts");
    const double n = static_cast<double>(scores.size());
    const double prec = tp + fp ? double(tp) / double(tp + fp) : 0, rec = tp + fn ? double(tp) / double(tp + fn) : 0;
    expect(std::fabs(m.at("accuracy").get<double>() - double(tp + tn) / n) <= 1e-12, std::string(conv) + " accuracy");
    expect(std::fabs(m.at("precision").get<double>() - prec) <= 1e-12, std::string(conv) + " precision");
    expect(std::fabs(m.at("recall").get<double>() - rec) <= 1e-12, std::string(conv) + " recall");
  }
  std::cout << "eval " << split << ": " << scores.size() << " cells, AUC " << auc << (bad ? " MISMATCH" : " agrees") << "\n";
  return bad == 0 ? 0 : 1;
}
// The audit replay (2 Adam steps of student B on head, tests/golden/make_replay_fixture.py)
// against PyTorch in float64. Adam's first step is about lr * sign(g), and float32 rounding
// flips a few ReLU / max-pool decisions, so even PyTorch's own float32 run differs from its
// float64 run by up to 0.17 per tensor after 2 steps. What is compared, and how tightly
// (PyTorch float32's own worst value in brackets):
//   student init regenerated from seed 1             bit-exact
//   loss of step 1 / step 2                          rel 1e-6 [8.7e-8] / 2e-4 [2.0e-5]
//   step-1 gradient, per tensor                      relL2 1e-2 [1.5e-3], max rel 2e-2 [3.9e-3],
//                                                    same sign wherever |g| >= 1e-2 max|g|
//   parameters after step 2, all together           |p - p_gold| / |p_gold - p_init| <= 0.1 [<= 0.057],
//                                                    at most 0.5 % of elements off by > lr/2 [<= 0.30 %]
//   parameters after step 2, per tensor of >= 1000   the same ratio <= 0.15 [0.057], at most 1 %
//   elements; smaller tensors (BatchNorm's 16)       off by > lr/2; at most 2 elements off by > lr/2
//                                                    (one flipped step-1 sign moves an element 2 lr)
//   BatchNorm running mean / var                     rel 1e-2 [2.0e-3] / 1e-3 [7.6e-5]
//   num_batches_tracked                              exactly 2
//   anomaly scores of the first 16 test cells        rel 1e-3 [1.6e-4]
int check_replay(const std::string& run, const std::string& golden, const std::string& scores_csv) {
  int bad = 0;
  auto expect = [&](bool ok, const std::string& what) {
    std::cout << (ok ? "  ok   " : "  FAIL ") << what << "\n";
    bad += !ok;
  };
  const auto rel = test::rel_error;
  const SafetensorsFile init = read_safetensors(golden + "/replay_head_B_init.safetensors");
  const SafetensorsFile after = read_safetensors(golden + "/replay_head_B.safetensors");
  const SafetensorsFile grad1 = read_safetensors(golden + "/replay_head_B_grad1.safetensors");
  const SafetensorsFile ours = read_safetensors(run + "/student.safetensors");
  const SafetensorsFile our_grad = read_safetensors(run + "/grad_step1.safetensors");
  const double lr = std::stod(after.metadata.at("lr"));

  auto regenerated = models::vgg_features(models::student_spec("B"), 3);
  models::init_weights(*regenerated, 1);
  const SafetensorsFile mine = regenerated->state_dict();
  bool same = true;
  for (const auto& [name, e] : init.tensors)
    if (e.stored == StDType::f32) same = same && std::memcmp(e.values.data(), mine.tensor(name, "init").data(), 4 * e.values.numel()) == 0;
  expect(same, "student init from seed 1 is bit-exact");

  std::ifstream log(run + "/train_log.jsonl");
  const nlohmann::json line = nlohmann::json::parse(log);
  const auto losses = line.at("step_losses").get<std::vector<double>>();
  for (int k = 1; k <= 2; ++k) {
    const double g = after.tensor("loss." + std::to_string(k), "golden").data()[0];
    const double r = std::fabs(losses.at(k - 1) - g) / g;
    expect(r <= (k == 1 ? 1e-6 : 2e-4), "loss " + std::to_string(k) + ": rel " + std::to_string(r));
  }
  double worst_l2 = 0, worst_max = 0, worst_upd = 0, worst_mean = 0, worst_var = 0, all_d2 = 0, all_u2 = 0;
  long all_far = 0, all_n = 0;
  long sign_flips = 0;
  for (const auto& [name, e] : grad1.tensors) {
    if (e.stored != StDType::f32) continue;
    const Tensor& g = e.values;
    const Tensor& o = our_grad.tensor(name, run);
    double d2 = 0, g2 = 0, gmax = 0;
    for (Index i = 0; i < g.numel(); ++i) gmax = std::max(gmax, std::fabs(double(g.data()[i])));
    for (Index i = 0; i < g.numel(); ++i) {
      d2 += std::pow(double(o.data()[i]) - g.data()[i], 2), g2 += std::pow(double(g.data()[i]), 2);
      if (std::fabs(g.data()[i]) >= 1e-2 * gmax && (o.data()[i] > 0) != (g.data()[i] > 0)) ++sign_flips;
    }
    worst_l2 = std::max(worst_l2, std::sqrt(d2 / g2));
    worst_max = std::max(worst_max, rel(o, g));
  }
  expect(worst_l2 <= 1e-2, "step-1 gradient relL2 " + std::to_string(worst_l2));
  expect(worst_max <= 2e-2, "step-1 gradient max rel " + std::to_string(worst_max));
  expect(sign_flips == 0, "step-1 gradient signs where |g| >= 1e-2 max|g|: " + std::to_string(sign_flips) + " differ");
  for (const auto& [name, e] : after.tensors) {
    if (name.rfind("loss.", 0) == 0) continue;
    if (e.stored == StDType::i64) {
      expect(ours.tensors.at(name).ints == e.ints && e.ints.at(0) == 2, name + " == 2");
      continue;
    }
    const Tensor& o = ours.tensor(name, run);
    if (name.find("running_mean") != std::string::npos) { worst_mean = std::max(worst_mean, rel(o, e.values)); continue; }
    if (name.find("running_var") != std::string::npos) { worst_var = std::max(worst_var, rel(o, e.values)); continue; }
    const Tensor& p0 = init.tensor(name, "init");
    double d2 = 0, u2 = 0;
    long far = 0;
    for (Index i = 0; i < o.numel(); ++i) {
      const double d = double(o.data()[i]) - e.values.data()[i];
      d2 += d * d, u2 += std::pow(double(e.values.data()[i]) - p0.data()[i], 2);
      far += std::fabs(d) > lr / 2;
    }
    if (o.numel() >= 1000) worst_upd = std::max(worst_upd, std::sqrt(d2 / u2));
    if (o.numel() >= 1000 ? far > o.numel() / 100 : far > 2)
      expect(false, name + ": " + std::to_string(far) + " of " + std::to_string(o.numel()) + " elements off by > lr/2");
    all_d2 += d2, all_u2 += u2, all_far += far, all_n += o.numel();
  }
  expect(std::sqrt(all_d2 / all_u2) <= 0.1, "parameters after 2 steps, all: |p - p_gold| / |update| " + std::to_string(std::sqrt(all_d2 / all_u2)));
  expect(all_far <= all_n / 200, "parameters after 2 steps, all: " + std::to_string(all_far) + " of " + std::to_string(all_n) + " elements off by > lr/2");
  expect(worst_upd <= 0.15, "parameters after 2 steps: worst tensor of >= 1000 elements |p - p_gold| / |update| " + std::to_string(worst_upd));
  expect(worst_mean <= 1e-2, "BatchNorm running_mean rel " + std::to_string(worst_mean));
  expect(worst_var <= 1e-3, "BatchNorm running_var rel " + std::to_string(worst_var));

  const SafetensorsFile golden_scores = read_safetensors(golden + "/replay_head_B_scores.safetensors");
  const Tensor& gs = golden_scores.tensor("scores", "golden");
  std::ifstream csv(scores_csv);
  std::string row;
  std::getline(csv, row);
  Tensor mine_scores = Tensor::empty(gs.shape());
  for (Index i = 0; i < gs.numel() && std::getline(csv, row); ++i) {
    std::stringstream ss(row);
    std::string f;
    for (int c = 0; c < 3; ++c) std::getline(ss, f, ',');
    mine_scores.data()[i] = std::stof(f);
  }
  expect(rel(mine_scores, gs) <= 1e-3, "scores of the first 16 test cells: rel " + std::to_string(rel(mine_scores, gs)));
  return bad == 0 ? 0 : 1;
}
// What pretrain-teacher exports must load wherever a torchvision VGG16 state_dict does:
// exactly the 13 convs' weight and bias under their plain (BatchNorm-free) indices.
int check_teacher(const std::string& path) {
  const SafetensorsFile f = read_safetensors(path);
  auto net = models::vgg16_features(3);
  const SafetensorsFile want = net->state_dict();
  int bad = 0;
  if (f.tensors.size() != want.tensors.size()) std::cerr << f.tensors.size() << " tensors, expected " << want.tensors.size() << "\n", ++bad;
  for (const auto& [name, e] : want.tensors) {
    if (!f.contains(name)) {
      std::cerr << "missing " << name << "\n", ++bad;
      continue;
    }
    const Tensor& t = f.tensor(name, path);
    if (!(t.shape() == e.values.shape())) std::cerr << name << " has shape " << t.shape().str() << "\n", ++bad;
    for (float v : t.span())
      if (!std::isfinite(v)) {
        std::cerr << name << " is not finite\n", ++bad;
        break;
      }
  }
  if (f.metadata.count("format") == 0 || f.metadata.at("format") != "morphokd-teacher") std::cerr << "no morphokd-teacher metadata\n", ++bad;
  std::cout << path << (bad ? ": NOT a plain VGG16\n" : ": plain VGG16, 26 finite tensors\n");
  return bad == 0 ? 0 : 1;
}
int check_fgsm(const std::string& x_path, const std::string& adv_path, double eps) {
  const Tensor x = data::load_cells_npy(x_path);
  NpyDType dtype{};
  const Tensor adv = read_npy(adv_path, &dtype);
  if (dtype != NpyDType::f32 || !(adv.shape() == Shape{x.dim(0), x.dim(2), x.dim(3)})) {
    std::cerr << adv_path << ": expected float32 " << Shape{x.dim(0), x.dim(2), x.dim(3)}.str() << ", got " << adv.shape().str() << "\n";
    return 1;
  }
  long moved = 0, bad = 0;
  for (Index i = 0; i < x.numel(); ++i) {
    const float a = adv.data()[i], d = std::abs(a - x.data()[i]);
    bad += !(a >= 0.0f && a <= 1.0f) || d > eps + 1e-7;
    moved += d > 0;
  }
  std::cout << adv_path << ": " << moved << " pixels moved, " << bad << " outside [0, 1] or beyond eps\n";
  return bad == 0 && moved > 0 ? 0 : 1;
}

int check_maps(const std::string& dir, long n) {
  long found = 0, bad = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".npy") continue;
    ++found;
    NpyDType dtype{};
    const Tensor m = read_npy(e.path().string(), &dtype);
    float peak = 0;
    bool finite = true;
    for (float v : m.span()) {
      finite = finite && std::isfinite(v) && v >= 0;
      peak = std::max(peak, v);
    }
    if (dtype != NpyDType::f32 || !(m.shape() == Shape{64, 64}) || !finite || peak == 0)
      std::cerr << e.path() << ": not a finite, non-negative, non-zero float32 64 x 64 map\n", ++bad;
  }
  std::cout << dir << ": " << found << " maps, " << bad << " bad\n";
  return found == n && bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 3 && std::strcmp(argv[1], "make") == 0) {
      make(argv[2]);
      return 0;
    }
    if (argc == 5 && std::strcmp(argv[1], "compare") == 0) return compare(argv[2], argv[3], std::stod(argv[4]));
    if (argc == 4 && std::strcmp(argv[1], "check-eval") == 0) return check_eval(argv[2], argv[3]);
    if (argc == 5 && std::strcmp(argv[1], "check-replay") == 0) return check_replay(argv[2], argv[3], argv[4]);
    if (argc == 3 && std::strcmp(argv[1], "check-teacher") == 0) return check_teacher(argv[2]);
    if (argc == 5 && std::strcmp(argv[1], "check-fgsm") == 0) return check_fgsm(argv[2], argv[3], std::stod(argv[4]));
    if (argc == 4 && std::strcmp(argv[1], "check-audit") == 0) return check_audit(argv[2], argv[3]);
    if (argc == 4 && std::strcmp(argv[1], "check-maps") == 0) return check_maps(argv[2], std::stol(argv[3]));
  } catch (const std::exception& e) {
    std::cerr << "cli_fixtures: " << e.what() << '\n';
    return 1;
  }
  std::cerr << "usage: cli_fixtures make DIR | compare A B TOL | check-eval RUN SPLIT | check-replay RUN GOLDEN SCORES.csv | check-teacher FILE | check-fgsm X XADV EPS | check-maps DIR N\n";
  return 2;
}
