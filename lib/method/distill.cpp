#include "morphokd/method/distill.hpp"

#include <algorithm>
#include <sstream>

#include "morphokd/error.hpp"
#include "morphokd/ops/ops.hpp"
#include "morphokd/parallel.hpp"

namespace morphokd::method {

std::vector<int> parse_layers(const std::string& text, const std::string& option) {
  std::vector<int> layers;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.size() != 1 || item[0] < '1' || item[0] > '5') fail(option + ": " + quote(item) + " is not a pool number 1..5");
    const int k = item[0] - '0';
    if (!layers.empty() && k <= layers.back()) fail(option + ": pools must be distinct and ascending, got " + text);
    layers.push_back(k);
  }
  if (layers.empty()) fail(option + ": no critical layers given");
  return layers;
}

std::string layers_string(const std::vector<int>& layers) {
  std::string s;
  for (int k : layers) {
    if (!s.empty()) s += ',';
    s += std::to_string(k);
  }
  return s;
}

namespace {
void check_maps(const std::vector<Tensor>& s, const std::vector<Tensor>& t) {
  check(!s.empty() && s.size() == t.size(), "distillation: student and teacher give different numbers of maps");
  for (std::size_t c = 0; c < s.size(); ++c) check_shape(t[c], s[c].shape(), "distillation teacher map");
}
}  // namespace

void distance_gradients(const std::vector<Tensor>& s, const std::vector<Tensor>& t, float lambda, float divisor,
                        std::span<const double> layer_weights, bool teacher_too, DistanceGrads& grads) {
  check_maps(s, t);
  check(layer_weights.empty() || layer_weights.size() == s.size(), "distance_gradients: one weight per layer");
  const Shape per_image{s[0].dim(0)};
  fit_shape(grads.dcos, per_image);
  fit_shape(grads.dmse, per_image);
  grads.ds.resize(s.size());
  grads.dt.resize(teacher_too ? s.size() : 0);
  for (std::size_t c = 0; c < s.size(); ++c) {
    const float w = layer_weights.empty() ? 1.0f : static_cast<float>(layer_weights[c]);
    grads.dcos.fill(-w / divisor);           // d w (1 - cos) / d cos
    grads.dmse.fill(w * lambda / divisor);   // d w lambda mse / d mse
    fit_shape(grads.ds[c], s[c].shape());
    if (teacher_too) fit_shape(grads.dt[c], s[c].shape());
    ops::distance_backward(s[c], t[c], grads.dcos, grads.dmse, &grads.ds[c], teacher_too ? &grads.dt[c] : nullptr);
  }
}

LossTerms distill_loss(const std::vector<Tensor>& s, const std::vector<Tensor>& t, float lambda, DistanceGrads& grads) {
  check_maps(s, t);
  const Index b = s[0].dim(0);
  // Per image: 1 - cos and mse summed over the layers, and a 1 that counts the image; summed
  // over the batch in image order (across processes when the batch is split).
  std::vector<double> rows(static_cast<std::size_t>(b) * 3, 0.0);  // [b, direction value count]
  Tensor cos = Tensor::empty({b}), mse = Tensor::empty({b});
  for (std::size_t c = 0; c < s.size(); ++c) {
    ops::distance_forward(s[c], t[c], cos, mse);
    for (Index i = 0; i < b; ++i) {
      rows[static_cast<std::size_t>(i) * 3] += 1.0 - cos.data()[i];
      rows[static_cast<std::size_t>(i) * 3 + 1] += mse.data()[i];
      rows[static_cast<std::size_t>(i) * 3 + 2] = 1.0;
    }
  }
  double sums[3];
  sum_rows(rows.data(), b, 3, sums);
  check(sums[2] > 0, "distillation: the batch has no images");
  LossTerms terms;
  terms.direction = sums[0] / sums[2];
  terms.value = sums[1] / sums[2];
  distance_gradients(s, t, lambda, static_cast<float>(sums[2]), {}, false, grads);
  terms.total = terms.direction + static_cast<double>(lambda) * terms.value;
  return terms;
}

void anomaly_scores(const std::vector<Tensor>& s, const std::vector<Tensor>& t, float lambda, std::span<double> scores,
                    std::vector<double>* per_layer) {
  check_maps(s, t);
  const Index b = s[0].dim(0);
  check(static_cast<Index>(scores.size()) == b, "anomaly_scores: one score per image");
  Tensor cos = Tensor::empty({b}), mse = Tensor::empty({b});
  const std::size_t layers = s.size();
  if (per_layer) per_layer->assign(static_cast<std::size_t>(b) * layers, 0.0);
  std::fill(scores.begin(), scores.end(), 0.0);
  for (std::size_t c = 0; c < layers; ++c) {
    ops::distance_forward(s[c], t[c], cos, mse);
    for (Index i = 0; i < b; ++i) {
      const double d = (1.0 - cos.data()[i]) + static_cast<double>(lambda) * mse.data()[i];
      scores[static_cast<std::size_t>(i)] += d;
      if (per_layer) (*per_layer)[static_cast<std::size_t>(i) * layers + c] = d;
    }
  }
}

}  // namespace morphokd::method
