// Input standardisation applied to every cell before the networks see it, identically in
// train, eval, score, attack and localize (it is recorded in run.json):
//   none    x as loaded (x / 255 for MHSMA): the MKD reference
//   dataset (x - mean) / std with the training split's pixel mean and std
//   image   each cell to zero mean, unit std (MHSMA cells are low-contrast: mean 126, std 13 of 255)
#pragma once
#include <string>

#include "morphokd/tensor.hpp"

namespace morphokd::data {

struct InputTransform {
  std::string kind = "none";  // none | dataset | image
  double mean = 0.0, std = 1.0;  // used by "dataset"

  // Error naming --input-norm for an unknown kind.
  static InputTransform make(const std::string& kind, const Tensor& train_cells);
  // In place on [N, 1, H, W].
  void apply(Tensor& cells) const;
};

}  // namespace morphokd::data
