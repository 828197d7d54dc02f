#include "morphokd/pipeline/detector.hpp"

#include "morphokd/data/augment.hpp"
#include "morphokd/error.hpp"
#include "morphokd/models/students.hpp"
#include "morphokd/models/vgg16.hpp"

namespace morphokd::pipeline {

Detector::Detector(models::Teacher teacher, std::unique_ptr<nn::Sequential> student, models::VggSpec student_spec,
                   method::DistillConfig distill, data::InputTransform input, method::ScoreRule rule)
    : teacher_(std::move(teacher)),
      student_(std::move(student)),
      student_spec_(std::move(student_spec)),
      distill_(std::move(distill)),
      input_(std::move(input)),
      rule_(std::move(rule)) {
  check(teacher_.channels == input_.channels(), "Detector: the teacher's input channels do not match the input transform");
}

std::vector<Tensor> Detector::teacher_maps(const Tensor& gray, const std::vector<int>& layers) {
  if (teacher_.channels == 3) {
    Tensor rgb;
    input_.to_rgb(gray, rgb);
    teacher_.net->forward(rgb);
  } else {
    teacher_.net->forward(gray);
  }
  std::vector<Tensor> maps;
  for (int k : layers) maps.push_back(teacher_.net->output(models::pool_index(models::vgg16_spec(), k)).clone());
  return maps;
}

std::vector<Tensor> Detector::student_maps(const Tensor& gray, const std::vector<int>& layers) {
  input_.to_rgb(gray, rgb_);
  student_->forward(rgb_);
  std::vector<Tensor> maps;
  for (int k : layers) maps.push_back(student_->output(student_pool_index(k)));
  return maps;
}

void check_critical_pools(const std::string& student, const std::vector<int>& layers, const std::string& option) {
  const models::VggSpec& spec = models::student_spec(student);
  auto s_net = models::vgg_features(spec, 3), t_net = models::vgg16_features(1);
  for (int k : layers) {
    const Shape s = s_net->output_shape({1, 3, 64, 64}, models::pool_index(spec, k));
    const Shape t = t_net->output_shape({1, 1, 64, 64}, models::pool_index(models::vgg16_spec(), k));
    if (!(s == t))
      fail(option + ": pool " + std::to_string(k) + " of student " + student + " is " + s.str() + ", the teacher's is " + t.str());
  }
}

void slice_maps(const std::vector<Tensor>& maps, Index begin, Index end, std::vector<Tensor>& out) {
  out.resize(maps.size());
  for (std::size_t c = 0; c < maps.size(); ++c) {
    const Tensor view = maps[c].slice(begin, end);
    if (!(out[c].shape() == view.shape())) out[c] = Tensor::empty(view.shape());
    out[c].copy_from(view);
  }
}

std::vector<Tensor> Detector::cache_teacher_maps(const Tensor& raw_cells, const std::vector<int>& layers) {
  const Index n = raw_cells.dim(0);
  std::vector<Tensor> cache;
  for (Index b = 0; b < n; b += kBatch) {
    Tensor gray = raw_cells.slice(b, std::min(n, b + kBatch)).clone();
    input_.apply(gray);
    const std::vector<Tensor> maps = teacher_maps(gray, layers);
    if (cache.empty())
      for (const Tensor& m : maps) cache.push_back(Tensor::empty({n, m.dim(1), m.dim(2), m.dim(3)}));
    for (std::size_t c = 0; c < maps.size(); ++c) cache[c].slice(b, b + maps[c].dim(0)).copy_from(maps[c]);
  }
  return cache;
}

std::vector<double> Detector::layer_terms(const Tensor& raw_cells, bool tta, const std::vector<Tensor>* teacher_cache) {
  check(raw_cells.rank() == 4 && raw_cells.dim(1) == 1, "score: cells must be [N, 1, H, W]");
  check(!(tta && teacher_cache), "layer_terms: a teacher cache holds unflipped cells only");
  student_->eval();
  const Index n = raw_cells.dim(0);
  const std::size_t layers = distill_.score_layers.size();
  std::vector<double> terms(static_cast<std::size_t>(n) * layers, 0.0), rows;
  std::vector<double> scores(static_cast<std::size_t>(kBatch));
  std::vector<Tensor> t;
  const int variants = tta ? 4 : 1;
  for (Index b = 0; b < n; b += kBatch) {
    const Index e = std::min(n, b + kBatch);
    const Tensor raw = raw_cells.slice(b, e);
    Tensor gray = Tensor::empty(raw.shape());
    for (int v = 0; v < variants; ++v) {
      data::flip_cells(raw, gray, v);
      input_.apply(gray);
      if (teacher_cache) slice_maps(*teacher_cache, b, e, t);
      else t = teacher_maps(gray, distill_.score_layers);
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

}  // namespace morphokd::pipeline
