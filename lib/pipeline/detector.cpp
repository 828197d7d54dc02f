#include "morphokd/pipeline/detector.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <list>
#include <map>

#include "morphokd/data/augment.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/models/students.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/layers.hpp"

namespace morphokd::pipeline {

namespace {

// The teacher memo (set_teacher_memo_budget): entries most recently used first.
struct MemoEntry {
  std::string key;
  std::vector<PackedRows> maps;
  double bytes = 0;
};
double g_memo_budget = 0;
std::list<MemoEntry> g_memo;

double memo_bytes() {
  double total = 0;
  for (const MemoEntry& e : g_memo) total += e.bytes;
  return total;
}

void memo_evict_to(double budget) {
  while (!g_memo.empty() && memo_bytes() > budget) g_memo.pop_back();
}

}  // namespace

void set_teacher_memo_budget(double bytes) {
  check(bytes >= 0 && std::isfinite(bytes), "teacher memo: the budget must be >= 0 bytes");
  g_memo_budget = bytes;
  memo_evict_to(bytes);
}

double teacher_memo_budget() { return g_memo_budget; }

Detector::Detector(models::Teacher teacher, std::unique_ptr<nn::Sequential> student, models::VggSpec student_spec,
                   method::DistillConfig distill, data::InputTransform input, method::ScoreRule rule)
    : teacher_(std::move(teacher)),
      student_(std::move(student)),
      student_spec_(std::move(student_spec)),
      distill_(std::move(distill)),
      input_(std::move(input)),
      rule_(std::move(rule)),
      teacher_fwd_(nn::FrozenForward::compile(*teacher_.net)) {
  // A 3-channel teacher also serves gray transforms: it sees the gray copies.
  check(teacher_.channels == 3 || input_.channels() == 1,
        "Detector: the teacher's input channels do not match the input transform");
  // Only pool outputs are read (maps); the activations before each ReLU are not needed.
  teacher_.net->set_relu_in_place(true);
  student_->set_relu_in_place(true);
  student_chain_ = nn::TrainChain::compile(*student_);
}

void Detector::set_teacher_precision(Precision p) {
  check(teacher_fwd_ != nullptr || p == Precision::fp32,
        "precision " + std::string(precision_name(p)) + ": the teacher is not a plain conv/ReLU/pool stack");
  teacher_fwd_ = nn::FrozenForward::compile(*teacher_.net, p);
  // The module path (FGSM, localization gradients) follows: Winograd there too; direct fp32
  // under bf16, whose teacher has no module-path arithmetic.
  for (std::size_t i = 0; i < teacher_.net->size(); ++i)
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&teacher_.net->at(i))) conv->algorithm = ops::conv_algorithm(p);
}

void Detector::release_teacher_plan() {
  if (teacher_fwd_) teacher_fwd_->release();
}

void Detector::release_teacher() {
  release_teacher_plan();
  // Storage-less views keep the shapes; the forward plan reads the values only when re-planned.
  for (auto& [name, p] : teacher_.net->named_parameters()) p->value = Tensor::wrap(nullptr, p->value.shape());
  teacher_released_ = true;
}

void Detector::release_student() {
  if (student_chain_) student_chain_->release();
  student_->release();
}

void Detector::reopen_released_teacher() {
  if (!teacher_released_) return;
  const models::Teacher again = models::open_teacher(teacher_.spec, teacher_.channels);
  check(again.sha256 == teacher_.sha256, "teacher " + quote(teacher_.spec) + " changed during the run: SHA-256 " + again.sha256 +
                                             ", when first opened " + teacher_.sha256);
  const auto from = again.net->named_parameters(), to = teacher_.net->named_parameters();
  for (std::size_t i = 0; i < to.size(); ++i) to[i].second->value = from[i].second->value;
  teacher_released_ = false;
}

std::string Detector::teacher_precision() const {
  return std::string(precision_name(teacher_fwd_ ? teacher_fwd_->precision() : Precision::fp32));
}

const Tensor& Detector::teacher_input(const Tensor& gray) {
  if (teacher_.channels == 1) return gray;
  input_.to_rgb(gray, teacher_rgb_);
  return teacher_rgb_;
}

std::vector<Tensor> Detector::teacher_maps(const Tensor& gray, const std::vector<int>& layers) {
  reopen_released_teacher();
  if (!teacher_fwd_) {
    std::vector<Tensor> maps = teacher_module_maps(gray, layers);
    for (Tensor& m : maps) m = m.clone();
    return maps;
  }
  // The chain takes increasing taps; layers may come in any order.
  std::vector<std::size_t> taps;
  for (int k : layers) taps.push_back(models::pool_index(models::vgg16_spec(), k));
  std::vector<std::size_t> sorted = taps;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<Tensor> outs, maps;
  teacher_fwd_->forward(teacher_input(gray), sorted, outs);
  if (sorted == taps) return outs;
  for (std::size_t t : taps) maps.push_back(outs[static_cast<std::size_t>(std::lower_bound(sorted.begin(), sorted.end(), t) - sorted.begin())].clone());
  return maps;
}

std::vector<Tensor> Detector::teacher_module_maps(const Tensor& gray, const std::vector<int>& layers) {
  reopen_released_teacher();
  teacher_.net->forward(teacher_input(gray));
  std::vector<Tensor> maps;
  for (int k : layers) maps.push_back(teacher_.net->output(models::pool_index(models::vgg16_spec(), k)));
  return maps;
}

std::vector<Tensor> Detector::student_maps(const Tensor& gray, const std::vector<int>& layers) {
  if (student_chain_) student_chain_->release();
  input_.to_rgb(gray, rgb_);
  student_->forward(rgb_);
  std::vector<Tensor> maps;
  for (int k : layers) maps.push_back(student_->output(student_pool_index(k)));
  return maps;
}

method::LossTerms Detector::distill_backward(const Tensor& gray, const std::vector<Tensor>& t_maps) {
  chain_taps_.clear();
  for (int k : distill_.train_layers) chain_taps_.push_back(student_pool_index(k));
  if (student_chain_ && student_chain_->preferred(gray.dim(0)) && std::is_sorted(chain_taps_.begin(), chain_taps_.end()) &&
      std::adjacent_find(chain_taps_.begin(), chain_taps_.end()) == chain_taps_.end()) {
    student_->release();
    ops::release_scratch();  // the modules' layout changes (validation), not used by the chain
    if (input_.channels() == 1) {  // the student's channels are copies: the chain takes one
      student_chain_->forward(gray, chain_taps_, chain_maps_);
    } else {
      input_.to_rgb(gray, rgb_);
      student_chain_->forward(rgb_, chain_taps_, chain_maps_);
    }
    const method::LossTerms terms = method::distill_loss(chain_maps_, t_maps, distill_.lambda, train_grads_);
    student_chain_->backward(train_grads_.ds);
    return terms;
  }
  const std::vector<Tensor> s_maps = student_maps(gray, distill_.train_layers);
  const method::LossTerms terms = method::distill_loss(s_maps, t_maps, distill_.lambda, train_grads_);
  std::map<std::size_t, Tensor> grads;
  for (std::size_t l = 0; l < train_grads_.ds.size(); ++l) grads[student_pool_index(distill_.train_layers[l])] = train_grads_.ds[l];
  student_->backward(grads, true, nullptr);
  return terms;
}

void check_critical_pools(const std::string& student, const std::vector<int>& layers, const std::string& option) {
  const models::VggSpec& spec = models::student_spec(student);
  for (int k : layers) {
    const int s = models::pool_channels(spec, k), t = models::pool_channels(models::vgg16_spec(), k);
    if (s != t)
      fail(option + ": pool " + std::to_string(k) + " of student " + student + " has " + std::to_string(s) +
           " channels, the teacher's " + std::to_string(t));
  }
}

std::vector<PackedRows> Detector::cache_teacher_maps(const Tensor& raw_cells, const std::vector<int>& layers) {
  std::string key;
  if (g_memo_budget > 0) {  // everything the maps depend on
    check(raw_cells.is_contiguous(), "cache_teacher_maps: cells must be contiguous");
    char norm[64];
    std::snprintf(norm, sizeof norm, "%.17g,%.17g", input_.mean, input_.std);
    key = teacher_.sha256 + "|" + std::to_string(teacher_.channels) + "|" + teacher_precision() + "|" + input_.spec() + "|" + norm + "|" +
          method::layers_string(layers) + "|" + raw_cells.shape().str() + "|" +
          sha256_hex(std::as_bytes(std::span(raw_cells.data(), static_cast<std::size_t>(raw_cells.numel()))));
    const auto hit = std::find_if(g_memo.begin(), g_memo.end(), [&](const MemoEntry& e) { return e.key == key; });
    if (hit != g_memo.end()) {
      g_memo.splice(g_memo.begin(), g_memo, hit);
      return hit->maps;
    }
  }
  const Index n = raw_cells.dim(0);
  std::vector<PackedRows::Builder> packing;
  for (Index b = 0; b < n; b += kLeanBatch) {
    Tensor gray = raw_cells.slice(b, std::min(n, b + kLeanBatch)).clone();
    input_.apply(gray);
    const std::vector<Tensor> maps = teacher_maps(gray, layers);
    if (packing.empty())
      for (const Tensor& m : maps) packing.emplace_back(m.shape().with_batch(n));
    for (std::size_t c = 0; c < maps.size(); ++c) packing[c].add(maps[c]);
  }
  std::vector<PackedRows> cache;
  double bytes = 0;
  for (PackedRows::Builder& p : packing) {
    cache.push_back(p.finish());
    bytes += static_cast<double>(cache.back().bytes());
  }
  if (g_memo_budget > 0) {
    if (bytes <= g_memo_budget) {
      g_memo.push_front({key, cache, bytes});
      memo_evict_to(g_memo_budget);
    }
  }
  return cache;
}

std::vector<double> Detector::layer_terms(const Tensor& raw_cells, bool tta, const std::vector<PackedRows>* teacher_cache, Index batch) {
  check(raw_cells.rank() == 4 && raw_cells.dim(1) == 1, "score: cells must be [N, 1, H, W]");
  check(!(tta && teacher_cache), "layer_terms: a teacher cache holds unflipped cells only");
  student_->eval();
  const Index n = raw_cells.dim(0);
  const std::size_t layers = distill_.score_layers.size();
  std::vector<double> terms(static_cast<std::size_t>(n) * layers, 0.0), rows;
  check(batch >= 1, "layer_terms: batch must be at least 1");
  std::vector<double> scores(static_cast<std::size_t>(batch));
  std::vector<Tensor> t;
  const int variants = tta ? 4 : 1;
  std::vector<std::vector<PackedRows>> memo;  // [variant] the teacher's maps of all cells, through the memo
  if (!teacher_cache && g_memo_budget > 0) {
    Tensor flipped = Tensor::empty(raw_cells.shape());
    for (int v = 0; v < variants; ++v) {
      data::flip_cells(raw_cells, flipped, v);
      memo.push_back(cache_teacher_maps(flipped, distill_.score_layers));
    }
  }
  for (Index b = 0; b < n; b += batch) {
    const Index e = std::min(n, b + batch);
    const Tensor raw = raw_cells.slice(b, e);
    Tensor gray = Tensor::empty(raw.shape());
    for (int v = 0; v < variants; ++v) {
      data::flip_cells(raw, gray, v);
      input_.apply(gray);
      if (teacher_cache || !memo.empty()) {
        const std::vector<PackedRows>& maps = teacher_cache ? *teacher_cache : memo[static_cast<std::size_t>(v)];
        t.resize(maps.size());
        for (std::size_t c = 0; c < maps.size(); ++c) maps[c].unpack(b, e, t[c]);
      } else {
        t = teacher_maps(gray, distill_.score_layers);
      }
      const std::vector<Tensor> s = student_maps(gray, distill_.score_layers);
      method::anomaly_scores(s, t, distill_.lambda, std::span<double>(scores).first(static_cast<std::size_t>(e - b)), &rows);
      for (std::size_t j = 0; j < rows.size(); ++j) terms[static_cast<std::size_t>(b) * layers + j] += rows[j] / variants;
    }
  }
  return terms;
}

std::vector<double> Detector::score(const Tensor& raw_cells) {
  return rule_.combine_terms(layer_terms(raw_cells, rule_.tta_flip), distill_.score_layers.size());
}

std::vector<double> Detector::input_gradient(const Tensor& raw_cells, const std::vector<int>& layers,
                                             std::span<const double> layer_weights, bool tta, Tensor& grad,
                                             bool per_channel) {
  check(raw_cells.rank() == 4 && raw_cells.dim(1) == 1, "input gradient: cells must be [N, 1, H, W]");
  check(!per_channel || teacher_.channels == 3, "input gradient: per-channel gradients need a 3-channel teacher");
  student_->eval();
  const Index n = raw_cells.dim(0);
  const std::size_t nl = layers.size();
  const Shape shape{n, per_channel ? 3 : 1, raw_cells.dim(2), raw_cells.dim(3)};
  fit_shape(grad, shape);
  grad.fill(0.0f);
  std::vector<double> terms(static_cast<std::size_t>(n) * nl, 0.0), rows, scores(static_cast<std::size_t>(kBatch));
  InputGradBuffers& buf = in_grad_;
  const int variants = tta ? 4 : 1;
  // The teacher's chain where it computes the modules' gradient: plain ReLUs, taps in order.
  buf.t_taps.clear();
  for (int k : layers) buf.t_taps.push_back(models::pool_index(models::vgg16_spec(), k));
  const bool teacher_chain = teacher_fwd_ && !guided_ && std::is_sorted(buf.t_taps.begin(), buf.t_taps.end()) &&
                             std::adjacent_find(buf.t_taps.begin(), buf.t_taps.end()) == buf.t_taps.end();
  for (Index b = 0; b < n; b += kBatch) {
    const Index e = std::min(n, b + kBatch);
    const Tensor raw = raw_cells.slice(b, e);
    fit_shape(buf.flipped, raw.shape());
    fit_shape(buf.gray, raw.shape());
    for (int v = 0; v < variants; ++v) {
      data::flip_cells(raw, buf.flipped, v);
      buf.gray.copy_from(buf.flipped);
      input_.apply(buf.gray);
      // Views, read only before the backward passes below.
      if (teacher_chain) {
        reopen_released_teacher();
        teacher_fwd_->forward_for_gradient(teacher_input(buf.gray), buf.t_taps, buf.t_maps);
      }
      const std::vector<Tensor> t = teacher_chain ? buf.t_maps : teacher_module_maps(buf.gray, layers);
      const std::vector<Tensor> s = student_maps(buf.gray, layers);
      method::anomaly_scores(s, t, distill_.lambda, std::span<double>(scores).first(static_cast<std::size_t>(e - b)), &rows);
      for (std::size_t j = 0; j < rows.size(); ++j) terms[static_cast<std::size_t>(b) * nl + j] += rows[j] / variants;

      method::distance_gradients(s, t, distill_.lambda, 1.0f, layer_weights, true, buf.maps);
      buf.s_grads.clear();
      buf.t_grads.clear();
      for (std::size_t l = 0; l < nl; ++l) {
        buf.s_grads[student_pool_index(layers[l])] = buf.maps.ds[l];
        if (!teacher_chain) buf.t_grads[buf.t_taps[l]] = buf.maps.dt[l];
      }
      fit_shape(buf.d_student, rgb_.shape());
      fit_shape(buf.d_teacher, teacher_.channels == 3 ? teacher_rgb_.shape() : buf.gray.shape());
      student_->backward(buf.s_grads, false, &buf.d_student);
      if (teacher_chain)
        teacher_fwd_->input_backward(buf.maps.dt, buf.d_teacher);
      else
        teacher_.net->backward(buf.t_grads, false, &buf.d_teacher);
      if (teacher_.channels == 3) {  // both networks see the same 3 channels: add, then undo to_rgb
        buf.d_student.add_from(buf.d_teacher);
        input_.to_rgb_backward(buf.d_student, buf.d_cell, per_channel);
      } else {
        input_.to_rgb_backward(buf.d_student, buf.d_cell);
        buf.d_cell.add_from(buf.d_teacher);
      }
      input_.backward(buf.flipped, buf.d_cell);
      // Flips are their own inverses: flipping the gradient back puts it on the cell's pixels.
      const Shape planes{buf.d_cell.dim(0) * buf.d_cell.dim(1), 1, buf.d_cell.dim(2), buf.d_cell.dim(3)};
      fit_shape(buf.d_back, buf.d_cell.shape());
      Tensor back_planes = buf.d_back.reshape(planes);
      data::flip_cells(buf.d_cell.reshape(planes), back_planes, v);
      float* g = grad.data() + b * (grad.numel() / n);
      const float* src = buf.d_back.data();
      for (Index i = 0, m = buf.d_back.numel(); i < m; ++i) g[i] += src[i] / static_cast<float>(variants);
    }
  }
  return terms;
}

std::vector<double> Detector::score_gradient(const Tensor& raw_cells, Tensor& grad, bool per_channel) {
  const std::size_t nl = distill_.score_layers.size();
  const std::vector<double> weights = rule_.layer_weights(nl);
  const std::vector<double> terms = input_gradient(raw_cells, distill_.score_layers, weights, rule_.tta_flip, grad, per_channel);
  // A bf16 teacher's gradients run in fp32 (set_teacher_precision): its scores are its bf16
  // forward's, score()'s.
  if (teacher_fwd_ && teacher_fwd_->precision() == Precision::bf16) return score(raw_cells);
  return rule_.combine_terms(terms, nl);
}

void Detector::set_guided(bool on) {
  guided_ = on;
  student_->set_guided(on);
  teacher_.net->set_guided(on);
}

}  // namespace morphokd::pipeline
