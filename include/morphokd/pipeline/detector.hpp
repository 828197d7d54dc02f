// A detector: the frozen teacher, a student, the distillation settings, the input
// transform and the score rule. Cells given to it are raw [N, 1, 64, 64] in [0, 1]; it
// applies the transform.
#pragma once
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "morphokd/data/transform.hpp"
#include "morphokd/method/distill.hpp"
#include "morphokd/method/score_rule.hpp"
#include "morphokd/models/teacher.hpp"
#include "morphokd/models/vgg.hpp"
#include "morphokd/nn/frozen.hpp"
#include "morphokd/nn/module.hpp"
#include "morphokd/nn/train_chain.hpp"
#include "morphokd/packed_rows.hpp"

namespace morphokd::pipeline {

class Detector {
 public:
  Detector(models::Teacher teacher, std::unique_ptr<nn::Sequential> student, models::VggSpec student_spec,
           method::DistillConfig distill, data::InputTransform input, method::ScoreRule rule = {});

  // Teacher maps at pools `layers` for transformed gray cells: copies the caller may keep.
  // Forward only, through the fused inference chain when the teacher allows it.
  std::vector<Tensor> teacher_maps(const Tensor& gray, const std::vector<int>& layers);
  // Student maps at pools `layers`: views into its activations, valid until its next forward.
  std::vector<Tensor> student_maps(const Tensor& gray, const std::vector<int>& layers);
  std::size_t student_pool_index(int k) const { return models::pool_index(student_spec_, k); }

  // The training step's gradient: student maps of transformed cells at the training layers,
  // the distillation loss against `t_maps`, and the student's parameter gradients
  // (overwritten). The caller steps the optimiser.
  method::LossTerms distill_backward(const Tensor& gray, const std::vector<Tensor>& t_maps);

  // Distance terms of raw cells over the score layers, student in eval mode, in batches:
  // N x L, row-major. tta: each term averaged over the cell's 4 flips. `teacher_cache`
  // (optional, not with tta) holds the teacher's score-layer maps of these same cells, as
  // cache_teacher_maps made them. `batch`: cells per forward (kLeanBatch: a quarter of the
  // buffers); the terms do not depend on it.
  std::vector<double> layer_terms(const Tensor& raw_cells, bool tta, const std::vector<PackedRows>* teacher_cache = nullptr,
                                  Index batch = kBatch);
  // Anomaly scores of raw cells by the score rule (its tta, its calibration).
  std::vector<double> score(const Tensor& raw_cells);
  // Input gradients (FGSM, localization): the per-cell objective  sum_c w_c term_c  over
  // `layers` (w_c = layer_weights[c], or 1 when empty) and its gradient with respect to the
  // raw cells, through the input transform and both networks (no weight gradients), student
  // in eval mode so each cell's gradient is its own. Returns the N x L terms, like
  // layer_terms; `grad` becomes [N, 1, H, W], or with `per_channel` [N, 3, H, W]: the
  // gradient of each of the 3 channel copies the networks see (needs a 3-channel teacher).
  // tta: terms and gradient averaged over the cell's 4 flips.
  std::vector<double> input_gradient(const Tensor& raw_cells, const std::vector<int>& layers,
                                     std::span<const double> layer_weights, bool tta, Tensor& grad,
                                     bool per_channel = false);
  // The gradient of score(): the score layers, the rule's weights and flips. Returns the scores,
  // score()'s (under a bf16 teacher from its bf16 forward, not the fp32 gradient pass).
  std::vector<double> score_gradient(const Tensor& raw_cells, Tensor& grad, bool per_channel = false);
  // Guided backpropagation in both networks (nn::Module::set_guided).
  void set_guided(bool on);
  // The teacher's forward-only passes (teacher_maps, scores, caches) in `p` (runtime.hpp);
  // gradients go through the fp32 modules whatever it is.
  void set_teacher_precision(Precision p);
  std::string teacher_precision() const;
  // Frees the teacher's forward-only plan (its buffers and reordered weights) until its next
  // use: for training from cached maps.
  void release_teacher_plan();
  // Frees the plan and the teacher's weights too, while cached maps stand in for it: its next
  // use reopens the weights from its spec, which must give the same SHA-256 (an Error naming
  // the spec otherwise). Until then teacher() gives the shapes, not the values.
  void release_teacher();
  // Frees the student's training plan and its modules' buffers until their next use.
  void release_student();

  // Teacher maps at `layers` of all raw cells, in batches: [N, C, H, W] per layer, kept
  // without their zeros. With the teacher memo on (below) they may be shared.
  std::vector<PackedRows> cache_teacher_maps(const Tensor& raw_cells, const std::vector<int>& layers);

  nn::Sequential& student() { return *student_; }
  const models::Teacher& teacher() const { return teacher_; }
  const method::DistillConfig& distill() const { return distill_; }
  const data::InputTransform& input() const { return input_; }
  method::ScoreRule& rule() { return rule_; }

  static constexpr Index kBatch = 64;
  // Batches where memory counts more than speed (scoring at kBatch runs ~10 % faster): the
  // teacher's in caches (VGG16's buffers at kBatch: 134 MB) and both networks' in training's
  // validation and calibration. An image's maps and terms do not depend on its batch.
  static constexpr Index kLeanBatch = 16;

 private:
  const Tensor& teacher_input(const Tensor& gray);
  void reopen_released_teacher();
  // Teacher maps through the modules, which keep the activations their backward needs:
  // views into its activations, valid until its next forward.
  std::vector<Tensor> teacher_module_maps(const Tensor& gray, const std::vector<int>& layers);

  models::Teacher teacher_;
  bool teacher_released_ = false;  // its weights' storage freed (release_teacher)
  std::unique_ptr<nn::Sequential> student_;
  models::VggSpec student_spec_;
  method::DistillConfig distill_;
  data::InputTransform input_;
  method::ScoreRule rule_;
  Tensor rgb_;  // the student's 3-channel copy of the gray input
  Tensor teacher_rgb_;  // a 3-channel teacher's input, kept for its backward pass
  std::unique_ptr<nn::FrozenForward> teacher_fwd_;  // null: the teacher has other modules
  bool guided_ = false;                             // set_guided: the teacher's gradients through its modules
  method::DistanceGrads train_grads_;  // distill_backward's map gradients, kept from step to step
  // The student's training path where it is faster than its modules (null: other modules).
  // Each path releases the other's planned buffers, so both are not held at once.
  std::unique_ptr<nn::TrainChain> student_chain_;
  std::vector<Tensor> chain_maps_;    // its maps of the last batch
  std::vector<std::size_t> chain_taps_;
  // input_gradient's buffers, kept from call to call: a batch of the same size allocates nothing.
  struct InputGradBuffers {
    Tensor flipped, gray;                    // [B, 1, H, W]: the flipped raw cells, transformed
    method::DistanceGrads maps;              // d/d both networks' maps
    std::map<std::size_t, Tensor> s_grads, t_grads;  // the same, by module index
    std::vector<std::size_t> t_taps;         // the teacher's maps' module indices
    std::vector<Tensor> t_maps;              // its maps through its chain
    Tensor d_student, d_teacher;             // d/d each network's input
    Tensor d_cell, d_back;                   // d/d the flipped raw cells, flipped back
  } in_grad_;
};

// Teacher maps depend on the teacher's weights, the input transform, the cells and the pools
// only. With a budget > 0 (bytes), cache_teacher_maps keeps what it computes and gives it back
// when the same teacher sees the same cells again, and layer_terms goes through it, so the
// runs of an experiment compute each map once; least recently used maps go first. Same bits
// as without (same batches). 0, the default: nothing is kept.
void set_teacher_memo_budget(double bytes);
double teacher_memo_budget();

// Each critical pool must have the same shape in student and teacher (64x64 cells); an
// Error naming `option` otherwise.
void check_critical_pools(const std::string& student, const std::vector<int>& layers, const std::string& option);

}  // namespace morphokd::pipeline
