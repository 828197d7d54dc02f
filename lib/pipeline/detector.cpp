#include "morphokd/pipeline/detector.hpp"

#include <cstring>

#include "morphokd/error.hpp"
#include "morphokd/models/vgg16.hpp"

namespace morphokd::pipeline {

Detector::Detector(models::Teacher teacher, std::unique_ptr<nn::Sequential> student, models::VggSpec student_spec,
                   method::DistillConfig distill, data::InputTransform input)
    : teacher_(std::move(teacher)),
      student_(std::move(student)),
      student_spec_(std::move(student_spec)),
      distill_(std::move(distill)),
      input_(std::move(input)) {}

std::vector<Tensor> Detector::teacher_maps(const Tensor& gray, const std::vector<int>& layers) {
  teacher_.gray->forward(gray);
  std::vector<Tensor> maps;
  for (int k : layers) maps.push_back(teacher_.gray->output(models::pool_index(models::vgg16_spec(), k)).clone());
  return maps;
}

std::vector<Tensor> Detector::student_maps(const Tensor& gray, const std::vector<int>& layers) {
  const Index n = gray.dim(0), hw = gray.dim(2) * gray.dim(3);
  if (!(rgb_.shape() == Shape{n, 3, gray.dim(2), gray.dim(3)})) rgb_ = Tensor::empty({n, 3, gray.dim(2), gray.dim(3)});
  for (Index i = 0; i < n; ++i)
    for (Index c = 0; c < 3; ++c) std::memcpy(rgb_.data() + (i * 3 + c) * hw, gray.data() + i * hw, sizeof(float) * hw);
  student_->forward(rgb_);
  std::vector<Tensor> maps;
  for (int k : layers) maps.push_back(student_->output(student_pool_index(k)));
  return maps;
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

std::vector<double> Detector::score(const Tensor& raw_cells, std::vector<double>* per_layer,
                                    const std::vector<Tensor>* teacher_cache) {
  check(raw_cells.rank() == 4 && raw_cells.dim(1) == 1, "score: cells must be [N, 1, H, W]");
  student_->eval();
  const Index n = raw_cells.dim(0);
  const std::size_t layers = distill_.score_layers.size();
  std::vector<double> scores(static_cast<std::size_t>(n));
  if (per_layer) per_layer->assign(static_cast<std::size_t>(n) * layers, 0.0);
  std::vector<double> rows;
  std::vector<Tensor> t;
  for (Index b = 0; b < n; b += kBatch) {
    const Index e = std::min(n, b + kBatch);
    Tensor gray = raw_cells.slice(b, e).clone();
    input_.apply(gray);
    if (teacher_cache) slice_maps(*teacher_cache, b, e, t);
    else t = teacher_maps(gray, distill_.score_layers);
    const std::vector<Tensor> s = student_maps(gray, distill_.score_layers);
    method::anomaly_scores(s, t, distill_.lambda, std::span<double>(scores).subspan(static_cast<std::size_t>(b), static_cast<std::size_t>(e - b)),
                           per_layer ? &rows : nullptr);
    if (per_layer) std::copy(rows.begin(), rows.end(), per_layer->begin() + static_cast<std::ptrdiff_t>(b * static_cast<Index>(layers)));
  }
  return scores;
}

}  // namespace morphokd::pipeline
