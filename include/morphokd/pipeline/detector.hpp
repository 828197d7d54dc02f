// A detector: the frozen gray teacher, a student, the distillation settings and the input
// transform. Cells given to it are raw [N, 1, 64, 64] in [0, 1]; it applies the transform.
#pragma once
#include <memory>
#include <vector>

#include "morphokd/data/transform.hpp"
#include "morphokd/method/distill.hpp"
#include "morphokd/models/teacher.hpp"
#include "morphokd/models/vgg.hpp"
#include "morphokd/nn/module.hpp"

namespace morphokd::pipeline {

class Detector {
 public:
  Detector(models::Teacher teacher, std::unique_ptr<nn::Sequential> student, models::VggSpec student_spec,
           method::DistillConfig distill, data::InputTransform input);

  // Teacher maps at pools `layers` for transformed gray cells: copies the caller may keep.
  std::vector<Tensor> teacher_maps(const Tensor& gray, const std::vector<int>& layers);
  // Student maps at pools `layers`: views into its activations, valid until its next forward.
  std::vector<Tensor> student_maps(const Tensor& gray, const std::vector<int>& layers);
  std::size_t student_pool_index(int k) const { return models::pool_index(student_spec_, k); }

  // Anomaly scores of raw cells, student in eval mode, in batches. per_layer: N x L
  // distance terms over the score layers. `teacher_cache` (optional) holds the teacher's
  // score-layer maps of these same cells, as cache_teacher_maps made them.
  std::vector<double> score(const Tensor& raw_cells, std::vector<double>* per_layer = nullptr,
                            const std::vector<Tensor>* teacher_cache = nullptr);
  // Teacher maps at `layers` of all raw cells, in batches: [N, C, H, W] per layer.
  std::vector<Tensor> cache_teacher_maps(const Tensor& raw_cells, const std::vector<int>& layers);

  nn::Sequential& student() { return *student_; }
  const models::Teacher& teacher() const { return teacher_; }
  const method::DistillConfig& distill() const { return distill_; }
  const data::InputTransform& input() const { return input_; }

  static constexpr Index kBatch = 64;

 private:
  models::Teacher teacher_;
  std::unique_ptr<nn::Sequential> student_;
  models::VggSpec student_spec_;
  method::DistillConfig distill_;
  data::InputTransform input_;
  Tensor rgb_;  // the student's 3-channel copy of the gray input
};

// Rows [begin, end) of every map in `maps`, copied into `out` (resized as needed).
void slice_maps(const std::vector<Tensor>& maps, Index begin, Index end, std::vector<Tensor>& out);

}  // namespace morphokd::pipeline
