#include "morphokd/method/score_rule.hpp"

#include <cmath>

#include "morphokd/error.hpp"

namespace morphokd::method {

namespace {
std::pair<double, double> mean_std(const std::vector<double>& v, const char* what) {
  if (v.size() < 2) fail(std::string(what) + ": needs at least two normal validation cells");
  double s = 0, q = 0;
  for (double x : v) s += x;
  const double m = s / static_cast<double>(v.size());
  for (double x : v) q += (x - m) * (x - m);
  const double sd = std::sqrt(q / static_cast<double>(v.size() - 1));
  if (!(sd > 0)) fail(std::string(what) + ": normal validation cells all score the same");
  return {m, sd};
}
}  // namespace

ScoreRule ScoreRule::parse(const std::string& combine, const std::string& tta) {
  if (combine != "sum" && combine != "layer-z") fail("--score: unknown " + quote(combine) + " (expected sum or layer-z)");
  if (tta != "none" && tta != "flip") fail("--tta: unknown " + quote(tta) + " (expected none or flip)");
  ScoreRule r;
  r.combine = combine;
  r.tta_flip = tta == "flip";
  return r;
}

void ScoreRule::calibrate(const std::vector<double>& terms, std::size_t layers, const std::vector<std::uint8_t>& labels) {
  check(terms.size() == labels.size() * layers, "calibrate: terms and labels differ in length");
  layer_mean.clear();
  layer_std.clear();
  if (combine == "sum") return;
  for (std::size_t c = 0; c < layers; ++c) {
    std::vector<double> normal;
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == 0) normal.push_back(terms[i * layers + c]);
    const auto [m, sd] = mean_std(normal, "--score layer-z");
    layer_mean.push_back(m);
    layer_std.push_back(sd);
  }
}

std::vector<double> ScoreRule::combine_terms(const std::vector<double>& terms, std::size_t layers) const {
  const std::size_t n = terms.size() / layers;
  const bool z = combine == "layer-z";
  check(!z || layer_mean.size() == layers, "score rule layer-z is not calibrated for these layers");
  std::vector<double> scores(n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < layers; ++c) {
      const double t = terms[i * layers + c];
      scores[i] += z ? (t - layer_mean[c]) / layer_std[c] : t;
    }
  return scores;
}

std::vector<double> ScoreRule::layer_weights(std::size_t layers) const {
  if (combine != "layer-z") return std::vector<double>(layers, 1.0);
  check(layer_std.size() == layers, "score rule layer-z is not calibrated for these layers");
  std::vector<double> w(layers);
  for (std::size_t c = 0; c < layers; ++c) w[c] = 1.0 / layer_std[c];
  return w;
}

std::vector<double> standardise_by_normal(const std::vector<double>& scores, const std::vector<double>& normal_reference) {
  const auto [m, sd] = mean_std(normal_reference, "ensemble standardisation");
  std::vector<double> z(scores.size());
  for (std::size_t i = 0; i < scores.size(); ++i) z[i] = (scores[i] - m) / sd;
  return z;
}

}  // namespace morphokd::method
