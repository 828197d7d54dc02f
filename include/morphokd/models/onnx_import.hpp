// A VGG-style feature extractor from an ONNX file (e.g. the ONNX model zoo's VGG16, or a
// torchvision VGG16 exported by torch.onnx), read through OpenCV's dnn module
// (readNetFromONNX and each layer's weight blobs). The leading run of Conv (3x3, stride 1,
// pad 1), Relu and MaxPool (2x2, stride 2) layers is mapped onto torchvision module indices
// (a conv at index i, its ReLU at i + 1, ...) and returned as safetensors-style tensors
// "features.{i}.weight" / "features.{i}.bias"; whatever follows the features (flatten,
// classifier) is ignored. Errors name the file and the first layer that does not fit.
#pragma once
#include <string>

#include "morphokd/io/safetensors.hpp"

namespace morphokd::models {

SafetensorsFile import_vgg_onnx(const std::string& path);

}  // namespace morphokd::models
