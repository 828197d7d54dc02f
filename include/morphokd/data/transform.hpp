// The input pipeline every cell goes through before the networks see it, identically in
// train, eval, score, attack and localize (recorded in run.json as one spec string,
// "[clahe+]KIND"):
//   clahe+   contrast-limited adaptive histogram equalisation first (OpenCV, clip 2, 8x8
//            tiles, on the 8-bit image): MHSMA cells are low-contrast (mean 126, std 13 of 255)
//   none     x as loaded (x / 255 for MHSMA): the MKD reference
//   dataset  (x - mean) / std with the training split's pixel mean and std
//   image    each cell to zero mean, unit std
//   imagenet torchvision's ImageNet mean/std per RGB channel, for an ImageNet teacher; the
//            gray cell is replicated to 3 channels first, so the teacher keeps its 3-channel conv
#pragma once
#include <string>

#include "morphokd/tensor.hpp"

namespace morphokd::data {

struct InputTransform {
  bool clahe = false;
  std::string kind = "none";     // none | dataset | image | imagenet
  double mean = 0.0, std = 1.0;  // used by "dataset"

  // "[clahe+]KIND" without dataset statistics; Error naming --input-norm when unknown.
  static InputTransform parse(const std::string& spec);
  // As parse, with the dataset statistics from the (raw) training cells.
  static InputTransform make(const std::string& spec, const Tensor& train_cells);
  std::string spec() const { return (clahe ? "clahe+" : "") + kind; }

  // Gray steps, in place on raw [N, 1, H, W] cells in [0, 1].
  void apply(Tensor& cells) const;
  // Vector-Jacobian product of apply at `raw`: grad [N, C, H, W] holds dL/d(applied cells),
  // each of its C planes for the same cell, and becomes dL/d(raw) in place. CLAHE works on
  // 8-bit steps and has no useful gradient: it is passed straight through (BPDA).
  void backward(const Tensor& raw, Tensor& grad) const;
  // Input channels the networks see: 3 for imagenet, else 1 (gray; replicated for the student).
  int channels() const { return kind == "imagenet" ? 3 : 1; }
  // [N, 1, H, W] after apply -> [N, 3, H, W]: replicated, per-channel ImageNet
  // normalisation for imagenet. `rgb` is resized as needed.
  void to_rgb(const Tensor& gray, Tensor& rgb) const;
  // Its vector-Jacobian product: drgb [N, 3, H, W] -> dgray [N, 1, H, W] (the channel copies'
  // gradients summed), or with `per_channel` -> [N, 3, H, W] (each copy's own gradient).
  void to_rgb_backward(const Tensor& drgb, Tensor& dgray, bool per_channel = false) const;
};

}  // namespace morphokd::data
