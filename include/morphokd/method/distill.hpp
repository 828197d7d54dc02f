// The distillation objective of METHOD.md over the critical layers (pool k outputs):
//   training loss  sum_c [ mean_b (1 - cos(s_c, t_c)) + lambda * mean_b mse(s_c, t_c) ]
//   anomaly score  sum_c [ (1 - cos(s_c, t_c)) + lambda * mse(s_c, t_c) ]   per image
// (the MKD code weights the value term by lambda, as here). s_c / t_c: student / teacher
// maps [B, C, H, W]; cos and mse over each image's flattened map.
#pragma once
#include <span>
#include <string>
#include <vector>

#include "morphokd/tensor.hpp"

namespace morphokd::method {

struct DistillConfig {
  std::vector<int> train_layers{2, 3, 4, 5};
  std::vector<int> score_layers{3, 4, 5};
  float lambda = 0.01f;
};

// "2,3,4,5" -> {2,3,4,5}: pools 1..5, distinct, ascending; Error naming `option` otherwise.
std::vector<int> parse_layers(const std::string& text, const std::string& option);
std::string layers_string(const std::vector<int>& layers);

struct LossTerms {
  double total = 0, direction = 0, value = 0;  // direction: sum_c mean_b (1-cos); value: sum_c mean_b mse
};

// The gradients below and their working buffers. The caller keeps one from step to step:
// after the first call with given shapes, a call allocates nothing.
struct DistanceGrads {
  std::vector<Tensor> ds, dt;  // per layer [B, C, H, W]: d/d student maps, d/d teacher maps
  Tensor dcos, dmse;           // [B]: d/d cos and d/d mse of one layer
};

// Loss and, in the same pass, its gradient with respect to each student map (grads.ds,
// overwritten). Inside a SplitBatch (parallel.hpp) the means are over every process's images.
LossTerms distill_loss(const std::vector<Tensor>& s, const std::vector<Tensor>& t, float lambda, DistanceGrads& grads);

// Gradients of  sum_b sum_c layer_weight_c * [(1 - cos) + lambda * mse] / divisor  with
// respect to the student maps (grads.ds) and, with `teacher_too`, the teacher maps (grads.dt),
// overwritten. Empty layer_weights: 1 each. (divisor = B gives the training loss's gradient.)
void distance_gradients(const std::vector<Tensor>& s, const std::vector<Tensor>& t, float lambda, float divisor,
                        std::span<const double> layer_weights, bool teacher_too, DistanceGrads& grads);

// scores[b] for each image; per_layer (if given) receives B x L rows of
// (1 - cos) + lambda * mse per critical layer: the paper's distance vectors (Fig. 5).
void anomaly_scores(const std::vector<Tensor>& s, const std::vector<Tensor>& t, float lambda, std::span<double> scores,
                    std::vector<double>* per_layer = nullptr);

}  // namespace morphokd::method
