#include "morphokd/method/distill.hpp"

#include <sstream>

#include "morphokd/error.hpp"
#include "morphokd/ops/ops.hpp"

namespace morphokd::method {

std::vector<int> parse_layers(const std::string& text, const std::string& option) {
  std::vector<int> layers;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.size() != 1 || item[0] < '1' || item[0] > '5') fail(option + ": '" + item + "' is not a pool number 1..5");
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

LossTerms distill_loss(const std::vector<Tensor>& s, const std::vector<Tensor>& t, float lambda, std::vector<Tensor>& ds) {
  check_maps(s, t);
  ds.resize(s.size());
  LossTerms terms;
  const Index b = s[0].dim(0);
  Tensor cos = Tensor::empty({b}), mse = Tensor::empty({b});
  const Tensor dcos = Tensor::full({b}, -1.0f / static_cast<float>(b));      // d mean(1 - cos) / d cos
  const Tensor dmse = Tensor::full({b}, lambda / static_cast<float>(b));     // d lambda mean(mse) / d mse
  for (std::size_t c = 0; c < s.size(); ++c) {
    ops::cosine_forward(s[c], t[c], cos);
    ops::mse_forward(s[c], t[c], mse);
    for (Index i = 0; i < b; ++i) {
      terms.direction += (1.0 - cos.data()[i]) / static_cast<double>(b);
      terms.value += mse.data()[i] / static_cast<double>(b);
    }
    if (!(ds[c].shape() == s[c].shape())) ds[c] = Tensor::empty(s[c].shape());
    Tensor dval = Tensor::empty(s[c].shape());
    ops::cosine_backward(s[c], t[c], dcos, &ds[c], nullptr);
    ops::mse_backward(s[c], t[c], dmse, &dval, nullptr);
    float* g = ds[c].data();
    const float* v = dval.data();
    for (Index i = 0; i < ds[c].numel(); ++i) g[i] += v[i];
  }
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
    ops::cosine_forward(s[c], t[c], cos);
    ops::mse_forward(s[c], t[c], mse);
    for (Index i = 0; i < b; ++i) {
      const double d = (1.0 - cos.data()[i]) + static_cast<double>(lambda) * mse.data()[i];
      scores[static_cast<std::size_t>(i)] += d;
      if (per_layer) (*per_layer)[static_cast<std::size_t>(i) * layers + c] = d;
    }
  }
}

}  // namespace morphokd::method
