#include "morphokd/pipeline/train.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <numeric>

#include "morphokd/data/augment.hpp"
#include "morphokd/data/mhsma.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/method/fgsm.hpp"
#include "morphokd/method/metrics.hpp"
#include "morphokd/models/students.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/optim.hpp"
#include "morphokd/ops/ops.hpp"
#include "morphokd/parallel.hpp"
#include "morphokd/pipeline/progress.hpp"
#include "morphokd/random.hpp"
#include "morphokd/runtime.hpp"
#include "run_json.hpp"

namespace morphokd::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kThresholdRules[] = {"f1", "youden", "normal-p95"};

struct Paths {
  std::string run, student, checkpoint, log;
  explicit Paths(const std::string& dir)
      : run((fs::path(dir) / "run.json").string()),
        student((fs::path(dir) / "student.safetensors").string()),
        checkpoint((fs::path(dir) / "checkpoint.safetensors").string()),
        log((fs::path(dir) / "train_log.jsonl").string()) {}
};

// Everything resumable: student tensors, Adam moments and step, epochs done.
void write_checkpoint(const std::string& path, nn::Sequential& student, nn::Adam& adam, int epochs_done,
                      std::int64_t steps_done) {
  SafetensorsFile f = student.state_dict();
  const auto& st = adam.state();
  for (std::size_t k = 0; k < st.m.size(); ++k) {
    auto dims = std::vector<Index>(st.m[k].shape().dims().begin(), st.m[k].shape().dims().end());
    f.tensors["adam.m." + std::to_string(k)] = {StDType::f32, st.m[k].clone(), {}, dims};
    f.tensors["adam.v." + std::to_string(k)] = {StDType::f32, st.v[k].clone(), {}, dims};
  }
  f.metadata = {{"epochs_done", std::to_string(epochs_done)},
                {"steps_done", std::to_string(steps_done)},
                {"adam_step", std::to_string(st.step)}};
  seal(f);
  write_safetensors(path, f);
}

std::pair<int, std::int64_t> read_checkpoint(const std::string& path, nn::Sequential& student, nn::Adam& adam) {
  const SafetensorsFile f = read_safetensors(path);
  check_seal(f, path);
  student.load_state_dict(f, path);
  auto& st = adam.state();
  for (std::size_t k = 0; k < st.m.size(); ++k) {
    st.m[k].copy_from(f.tensor("adam.m." + std::to_string(k), path));
    st.v[k].copy_from(f.tensor("adam.v." + std::to_string(k), path));
  }
  try {
    st.step = std::stoll(f.metadata.at("adam_step"));
    return {std::stoi(f.metadata.at("epochs_done")), std::stoll(f.metadata.at("steps_done"))};
  } catch (const std::exception&) {
    fail(path + ": checkpoint metadata is incomplete");
  }
}

void write_log(const std::string& path, const std::vector<json>& lines) {
  std::string text;
  for (const json& l : lines) text += l.dump() + "\n";
  write_file_atomic(path, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

std::vector<json> read_log(const std::string& path, int max_epoch) {
  std::vector<json> lines;
  if (!fs::exists(path)) return lines;
  const auto bytes = read_file(path);
  std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = text.find('\n', at);
    const json l = json::parse(text.substr(at, end - at), nullptr, false);
    if (!l.is_discarded() && l.value("epoch", 0) <= max_epoch) lines.push_back(l);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return lines;
}

// [a; b] along dimension 0.
Tensor concat_rows(const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty(Shape{a.dim(0) + b.dim(0), a.dim(1), a.dim(2), a.dim(3)});
  out.slice(0, a.dim(0)).copy_from(a);
  out.slice(a.dim(0), out.dim(0)).copy_from(b);
  return out;
}

bool both_classes(const std::vector<std::uint8_t>& labels) {
  bool n = false, a = false;
  for (auto l : labels) (l ? a : n) = true;
  return n && a;
}

}  // namespace

std::unique_ptr<nn::Adam> make_student_adam(nn::Sequential& student, double lr) {
  std::vector<nn::Parameter*> params;
  for (auto& [name, p] : student.named_parameters()) params.push_back(p);
  return std::make_unique<nn::Adam>(params, nn::AdamOptions{static_cast<float>(lr), 0.9f, 0.999f, 1e-8f, 0.0f});
}

void train(const TrainConfig& c, const std::string& run_dir, bool resume) {
  check_config(c);
  check_runs_here(c);
  // Data parallel (parallel.hpp): each process trains on its shard of every batch; rank 0 writes.
  Communicator& procs = world();
  const bool split = procs.size() > 1, writer = procs.rank() == 0;
  if (split) {
    check(deterministic(), "--distributed: needs --deterministic on (only the fixed-order kernels sum across processes)");
    check(c.fgsm_eps == 0, "--distributed: adversarial training (--fgsm-eps) runs in one process only");
  }
  const Paths paths(run_dir);
  if (!resume && writer && fs::exists(paths.run)) fail(run_dir + ": already holds a run; use a new --out or --resume");

  const data::LabelledCells train_set = data::load_mhsma(c.data_dir, "train", c.part);
  const data::LabelledCells valid_set = data::load_mhsma(c.data_dir, "valid", c.part);
  const std::vector<std::int64_t> normal_rows = data::rows_with_label(train_set.labels, 0);
  if (normal_rows.empty()) fail(train_set.y_path + ": no normal cells to train on");
  if (split) {  // every rank needs a group of images in every batch, the epoch's last one included
    const auto cells = static_cast<Index>(normal_rows.size());
    const Index smallest = cells % c.batch == 0 ? std::min(cells, c.batch) : cells % c.batch;
    const Index groups = (smallest + kBatchGroup - 1) / kBatchGroup;
    if (groups < procs.size())
      fail("--distributed: the smallest batch (" + std::to_string(smallest) + " cells, " + std::to_string(groups) +
           " groups of " + std::to_string(kBatchGroup) + ") cannot give each of the " + std::to_string(procs.size()) +
           " ranks a group; use at most " + std::to_string(groups) + " ranks or another --batch");
  }
  const data::InputTransform input = data::InputTransform::make(c.input_norm, train_set.cells);
  const data::AugmentOptions augment = data::parse_augment(c.augment);

  const models::VggSpec& spec = models::student_spec(c.student);
  auto student_net = models::vgg_features(spec, 3);
  if (c.student_init.empty()) models::init_weights(*student_net, c.seed);
  else student_net->load_state_dict(read_safetensors(c.student_init), c.student_init);
  method::DistillConfig distill{c.train_layers, c.score_layers, c.lambda};
  Detector det(models::open_teacher(c.teacher, input.channels()), std::move(student_net), spec, distill, input,
               method::ScoreRule::parse(c.score, c.tta));
  det.set_teacher_precision(parse_precision(c.precision));
  nn::Sequential& student = det.student();

  const std::unique_ptr<nn::Adam> optimiser = make_student_adam(student, c.lr);
  nn::Adam& adam = *optimiser;

  json run = {{"format", "morphokd-run"},
              {"format_version", kRunFormatVersion},
              {"status", "training"},
              {"morphokd", version_string()},
              {"build", build_info()},
              {"backend", backend_name(current_backend())},
              {"threads", num_threads()},
              {"deterministic", deterministic()},
              {"isa", cpu_isa()},
              {"onednn_fpmath", ops::onednn_fpmath_mode()},
              {"config", config_to_json(c)},
              {"input_norm", {{"kind", input.spec()}, {"mean", input.mean}, {"std", input.std}}},
              {"teacher", {{"spec", c.teacher}, {"sha256", det.teacher().sha256}}},
              {"data", json::object()}};
  for (const std::string& p : {train_set.x_path, train_set.y_path, valid_set.x_path, valid_set.y_path})
    run["data"][fs::path(p).filename().string()] = {{"path", p}, {"sha256", sha256_file(p)}};
  if (!c.student_init.empty()) run["student_init_sha256"] = sha256_file(c.student_init);

  int first_epoch = 0;
  std::int64_t steps_done = 0;
  std::vector<json> log;
  if (resume && fs::exists(paths.checkpoint)) {
    std::tie(first_epoch, steps_done) = read_checkpoint(paths.checkpoint, student, adam);
    log = read_log(paths.log, first_epoch);
    if (writer) std::cout << "resuming after epoch " << first_epoch << " (" << steps_done << " steps)\n";
  } else if (resume && writer) {  // stopped before its first checkpoint: the same start again
    std::cout << "no checkpoint yet: training from the start\n";
  }
  if (split) {  // same data, teacher and starting point everywhere, or no step is taken
    const std::string mine = run["data"].dump() + run["teacher"].dump() + run.value("student_init_sha256", "") +
                             " resume " + std::to_string(first_epoch) + " " + std::to_string(steps_done);
    if (const int r = first_rank_differing(std::as_bytes(std::span<const char>(mine.data(), mine.size()))); r >= 0)
      fail("--distributed: rank " + std::to_string(r) + " has other data files, teacher, initial student or checkpoint than rank 0 (SHA-256 differ)");
    run["distributed"] = {{"kind", "mpi"}, {"ranks", procs.size()}};
  }
  if (writer) {  // only once every input has been checked
    fs::create_directories(run_dir);
    write_json_atomic(paths.run, run);
  }

  // Teacher targets are a fixed set unless cells are rotated: without augmentation one
  // target per cell, with flips one per cell and flip variant. Compute them once.
  const Index n = static_cast<Index>(normal_rows.size());
  std::vector<std::vector<PackedRows>> cache;  // [flip variant][layer] -> [n, C, H, W]
  if (!augment.rotate) {
    const int variants = (augment.hflip ? 2 : 1) * (augment.vflip ? 2 : 1);
    double bytes = 0;  // the bound: as if no value were zero
    for (int k : c.train_layers)
      bytes += 4.0 * variants * static_cast<double>(n) *
               static_cast<double>(det.teacher().net->output_shape({1, det.teacher().channels, 64, 64}, models::pool_index(models::vgg16_spec(), k)).numel());
    if (bytes <= c.cache_limit_gb * 1e9) {
      const auto start = std::chrono::steady_clock::now();
      const Tensor normal = data::gather(train_set.cells, normal_rows);
      Tensor flipped = Tensor::empty(normal.shape());
      cache.resize(4);
      double held = 0;
      for (int v = 0; v < 4; ++v) {
        if (((v & 1) && !augment.hflip) || ((v & 2) && !augment.vflip)) continue;
        data::flip_cells(normal, flipped, v);
        cache[static_cast<std::size_t>(v)] = det.cache_teacher_maps(flipped, c.train_layers);
        for (const PackedRows& maps : cache[static_cast<std::size_t>(v)]) held += static_cast<double>(maps.bytes());
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      run["teacher_cache"] = {{"cells", n}, {"flip_variants", variants}, {"mb", held / 1e6}, {"unpacked_mb", bytes / 1e6}, {"seconds", seconds}};
      std::cout << "teacher targets cached: " << n << " cells x " << variants << " flip variants, "
                << static_cast<long>(held / 1e6) << " MB without their zeros (" << static_cast<long>(bytes / 1e6) << " MB unpacked), "
                << std::fixed << std::setprecision(1) << seconds << std::defaultfloat << " s\n";
    } else {
      std::cout << "teacher targets recomputed each batch: the cache would need up to " << static_cast<long>(bytes / 1e6)
                << " MB, over --cache-limit-gb\n";
    }
  }
  const bool valid_auc = writer && both_classes(valid_set.labels);
  std::vector<PackedRows> valid_cache = writer ? det.cache_teacher_maps(valid_set.cells, c.score_layers) : std::vector<PackedRows>{};
  if (!cache.empty()) {  // the cached maps stand in for the teacher (its forward: adversarial training's)
    if (c.fgsm_eps > 0)
      det.release_teacher_plan();
    else
      det.release_teacher();
  }
  return_free_heap();  // the caching's temporaries

  std::vector<Tensor> t_maps, cached_t;  // cached_t: the batch's targets from the cache, kept from step to step
  const std::size_t score_layers = c.score_layers.size();
  bool stop = false;
  for (int epoch = first_epoch; epoch < c.epochs && !stop; ++epoch) {
    student.train();
    const std::vector<std::int64_t> order =
        c.shuffle ? permutation(n, splitmix64(c.seed ^ 0x5348554646ull) + static_cast<std::uint64_t>(epoch))
                  : [&] { std::vector<std::int64_t> o(static_cast<std::size_t>(n)); std::iota(o.begin(), o.end(), 0); return o; }();
    Progress bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(c.epochs), static_cast<long>(n), "img");
    method::LossTerms sum;
    Index seen = 0;
    std::vector<double> step_losses;
    const double comm_before = procs.comm_seconds();
    for (Index b0 = 0; b0 < n; b0 += c.batch) {
      // This process's images of the global batch [b0, e): all of them in one process.
      const Index e0 = std::min(n, b0 + c.batch);
      const Shard shard = shard_of(e0 - b0, procs.rank(), procs.size());
      const Index b = b0 + shard.begin, e = b0 + shard.end;
      std::vector<std::int64_t> positions(order.begin() + b, order.begin() + e), rows;
      for (auto p : positions) rows.push_back(normal_rows[static_cast<std::size_t>(p)]);
      Tensor gray = data::gather(train_set.cells, rows);
      if (augment.any()) {
        Tensor out = Tensor::empty(gray.shape());
        data::augment_batch(gray, out, augment, c.seed, static_cast<std::uint64_t>(epoch), rows);
        gray = out;
      }
      // Adversarial training: the batch's attacked copy (FGSM raising the per-cell distillation
      // distance over the training pools, student in eval mode), kept raw before the transform.
      Tensor adv;
      if (c.fgsm_eps > 0) {
        Tensor g;
        det.input_gradient(gray, c.train_layers, {}, false, g);
        adv = Tensor::empty(gray.shape());
        method::fgsm_step(gray, g, static_cast<float>(c.fgsm_eps), method::FgsmDirection::raise, adv);
        input.apply(adv);
        student.train();
      }
      input.apply(gray);
      if (!cache.empty()) {  // row i of the batch: its cell's target for the flips it got
        cached_t.resize(c.train_layers.size());
        for (std::size_t l = 0; l < cached_t.size(); ++l)
          fit_shape(cached_t[l], cache[0][l].shape().with_batch(e - b));
#pragma omp parallel for schedule(static)
        for (Index i = 0; i < e - b; ++i) {
          const int v = data::draw_augment(augment, c.seed, static_cast<std::uint64_t>(epoch), rows[static_cast<std::size_t>(i)]).flip_variant();
          for (std::size_t l = 0; l < cached_t.size(); ++l) {
            const PackedRows& maps = cache[static_cast<std::size_t>(v)][l];
            maps.unpack(positions[static_cast<std::size_t>(i)], cached_t[l].data() + i * maps.row_size());
          }
        }
        t_maps = cached_t;
      } else {
        t_maps = det.teacher_maps(gray, c.train_layers);
      }
      if (c.fgsm_eps > 0) {  // teacher targets on the attacked cells themselves
        const std::vector<Tensor> t_adv = det.teacher_maps(adv, c.train_layers);
        if (c.fgsm_mix == "adv") {
          gray = adv;
          t_maps = t_adv;
        } else {
          gray = concat_rows(gray, adv);
          for (std::size_t l = 0; l < t_maps.size(); ++l) t_maps[l] = concat_rows(t_maps[l], t_adv[l]);
        }
      }
      const method::LossTerms terms = [&] {
        const SplitBatch batch_across_processes;  // every batch sum includes the other shards
        return det.distill_backward(gray, t_maps);
      }();
      if (c.dump_grads && writer) {  // the gradient Adam is about to use, named like the parameters
        SafetensorsFile g;
        for (auto& [name, p] : student.named_parameters())
          g.tensors[name] = {StDType::f32, p->grad.clone(), {}, std::vector<Index>(p->grad.shape().dims().begin(), p->grad.shape().dims().end())};
        write_safetensors((fs::path(run_dir) / ("grad_step" + std::to_string(steps_done + 1) + ".safetensors")).string(), g);
      }
      adam.step();
      step_losses.push_back(terms.total);
      const double w = static_cast<double>(e0 - b0);
      sum.total += terms.total * w;
      sum.direction += terms.direction * w;
      sum.value += terms.value * w;
      seen += e0 - b0;
      bar.advance(static_cast<long>(e0 - b0));
      if (++steps_done == c.steps) {  // audit replay: exactly K steps
        stop = true;
        break;
      }
    }
    bar.finish();
    const double seconds = bar.seconds();
    json line = {{"epoch", epoch + 1},
                 {"steps", steps_done},
                 {"loss", sum.total / static_cast<double>(seen)},
                 {"direction", sum.direction / static_cast<double>(seen)},
                 {"value", sum.value / static_cast<double>(seen)},
                 {"seconds", seconds},
                 {"img_per_s", static_cast<double>(seen) / seconds}};
    if (c.steps > 0) line["step_losses"] = step_losses;  // audit replay: each step's batch loss
    if (split) line["comm_seconds"] = procs.comm_seconds() - comm_before;  // in the batch sums' allgathers
    if (!writer) continue;  // the other processes only compute
    char text[256];
    std::snprintf(text, sizeof text, "epoch %3d/%d  loss %.5f  (direction %.5f, value %.4f)  %.1f s  %.1f img/s",
                  epoch + 1, c.epochs, line["loss"].get<double>(), line["direction"].get<double>(),
                  line["value"].get<double>(), seconds, static_cast<double>(seen) / seconds);
    std::string msg = text;
    // Every `every` epochs and at the end (0: never).
    auto due = [&](int every) { return every > 0 && ((epoch + 1) % every == 0 || epoch + 1 == c.epochs || stop); };
    // Validation frees the student's training plan for its own buffers: the next epoch plans
    // and faults that memory in again (~7 % of an epoch of student B on a Zen 4).
    if (valid_auc && due(c.valid_every)) {  // the score rule without test-time flips, calibrated on this epoch's student
      const std::vector<double> terms = det.layer_terms(valid_set.cells, false, &valid_cache, Detector::kLeanBatch);
      det.rule().calibrate(terms, score_layers, valid_set.labels);
      const std::vector<double> valid_scores = det.rule().combine_terms(terms, score_layers);
      const double auc = metrics::roc_auc(valid_scores, valid_set.labels);
      line["valid_auc"] = auc;
      std::snprintf(text, sizeof text, "  valid AUC %.4f", auc);
      msg += text;
    }
    std::cout << msg << std::endl;
    return_free_heap();  // validation's temporaries; without it the peak grew epoch by epoch
    log.push_back(line);
    write_log(paths.log, log);
    if (due(c.checkpoint_every)) write_checkpoint(paths.checkpoint, student, adam, epoch + 1, steps_done);
  }
  if (!writer) return;

  write_safetensors(paths.student, student.state_dict());
  // Training is over: its memory for the teacher's flips below.
  std::vector<std::vector<PackedRows>>().swap(cache);
  det.release_student();
  if (det.rule().tta_flip) std::vector<PackedRows>().swap(valid_cache);
  // The score rule's calibration and the thresholds, both from the validation split.
  const std::vector<double> terms =
      det.rule().tta_flip ? det.layer_terms(valid_set.cells, true, nullptr, Detector::kLeanBatch)
                          : det.layer_terms(valid_set.cells, false, &valid_cache, Detector::kLeanBatch);
  det.rule().calibrate(terms, score_layers, valid_set.labels);
  const std::vector<double> valid_scores = det.rule().combine_terms(terms, score_layers);
  json thresholds = json::object();
  for (const char* rule : kThresholdRules) {
    try {
      thresholds[rule] = threshold_to_json(metrics::fit_threshold(rule, valid_scores, valid_set.labels));
    } catch (const Error& e) {
      std::cout << "note: no '" << rule << "' threshold: " << e.what() << "\n";
    }
  }
  run["thresholds"] = thresholds;
  run["score_rule"] = {{"combine", det.rule().combine},
                       {"tta", det.rule().tta()},
                       {"layer_mean", det.rule().layer_mean},
                       {"layer_std", det.rule().layer_std}};
  run["student"] = {{"file", "student.safetensors"}, {"sha256", sha256_file(paths.student)}, {"parameters", student.num_parameters()}};
  run["checkpoint"] = {{"file", "checkpoint.safetensors"}, {"sha256", sha256_file(paths.checkpoint)}};
  run["train_log"] = {{"file", "train_log.jsonl"}, {"sha256", sha256_file(paths.log)}};
  run["steps_done"] = steps_done;
  run["status"] = "done";
  write_json_atomic(paths.run, run);
  std::cout << "wrote " << paths.student << " and " << paths.run << "\n";
}

}  // namespace morphokd::pipeline
