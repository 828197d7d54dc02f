#include "morphokd/models/teacher.hpp"

#include <filesystem>

#include "morphokd/error.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/models/onnx_import.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/layers.hpp"

namespace morphokd::models {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

SafetensorsFile teacher_state_dict(const std::string& spec) {
  if (spec.rfind("random:", 0) == 0) return open_vgg16_teacher(spec)->state_dict();
  if (ends_with(spec, ".onnx")) return import_vgg_onnx(spec);
  if (ends_with(spec, ".safetensors")) return read_safetensors(spec);
  fail("--teacher: " + quote(spec) + " is not random:SEED, a .safetensors or an .onnx file");
}

std::string teacher_sha256(const std::string& spec, const SafetensorsFile* state_dict) {
  if (spec.rfind("random:", 0) != 0) return sha256_file(spec);
  return sha256_hex(encode_safetensors(state_dict ? *state_dict : teacher_state_dict(spec)));
}

Teacher open_teacher(const std::string& spec, int channels) {
  check(channels == 1 || channels == 3, "open_teacher: channels must be 1 or 3");
  const SafetensorsFile rgb = teacher_state_dict(spec);
  SafetensorsFile gray = rgb;  // tensors share storage; only features.0.weight is replaced
  const Tensor& w = rgb.tensor("features.0.weight", spec);
  if (w.rank() != 4 || w.dim(1) != 3) fail(spec + ": features.0.weight must be [64, 3, 3, 3], got " + w.shape().str());
  Teacher t;
  t.channels = channels;
  t.spec = spec;
  t.sha256 = teacher_sha256(spec, &rgb);
  t.net = vgg16_features(channels);
  t.net->freeze();
  if (channels == 3) {
    t.net->load_state_dict(rgb, spec);
    t.net->eval();
    return t;
  }
  Tensor folded;
  nn::sum_input_channels(w, folded);
  gray.tensors["features.0.weight"] = {StDType::f32, folded, {}, {w.dim(0), 1, 3, 3}};
  t.net->load_state_dict(gray, spec);
  t.net->eval();
  return t;
}

}  // namespace morphokd::models
