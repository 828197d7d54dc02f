// The frozen VGG16 teacher. Spec strings:
//   random:SEED[:INIT] init_weights: xavier (default; zero biases, as the MKD reference),
//                      kaiming or torch (PyTorch's Conv2d default, nonzero biases)
//   PATH.safetensors   torchvision names features.{i}.weight/bias (others ignored)
//   PATH.onnx          a VGG16 ONNX model (ONNX model zoo, or torch.onnx export)
// MHSMA cells are gray, and the teacher sees the gray value in all 3 input channels, so
// with channels = 1 its first conv is folded to one input channel (weights summed over
// channels): the same function at a third of the first layer's cost. channels = 3 keeps
// the conv as it is, for inputs whose channels differ (ImageNet normalisation).
#pragma once
#include <memory>
#include <string>

#include "morphokd/io/safetensors.hpp"
#include "morphokd/nn/module.hpp"

namespace morphokd::models {

struct Teacher {
  std::unique_ptr<nn::Sequential> net;  // VGG16 features with `channels` input channels, eval mode, frozen
  int channels = 1;
  std::string spec;
  std::string sha256;  // of the weights file, or of the generated weights' safetensors encoding
};

Teacher open_teacher(const std::string& spec, int channels = 1);
// The 3-channel VGG16 state dict a spec names (for export and the fold test).
SafetensorsFile teacher_state_dict(const std::string& spec);
// The SHA-256 a run records for its teacher: of the file, or for random:SEED of the generated
// weights' safetensors encoding (`state_dict`: the spec's, when at hand; else regenerated).
std::string teacher_sha256(const std::string& spec, const SafetensorsFile* state_dict = nullptr);

}  // namespace morphokd::models
