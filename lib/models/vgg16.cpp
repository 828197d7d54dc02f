#include "morphokd/models/vgg16.hpp"

#include "morphokd/error.hpp"
#include "morphokd/io/safetensors.hpp"
#include "morphokd/nn/layers.hpp"

namespace morphokd::models {

const VggSpec& vgg16_spec() {
  static const VggSpec spec{{64, 64, kPool, 128, 128, kPool, 256, 256, 256, kPool, 512, 512, 512, kPool, 512, 512, 512, kPool},
                            /*bias=*/true, /*batch_norm=*/false};
  return spec;
}

std::unique_ptr<nn::Sequential> vgg16_features(int in_channels) { return vgg_features(vgg16_spec(), in_channels); }

std::unique_ptr<nn::Sequential> load_vgg16_features(const std::string& path) {
  auto net = vgg16_features();
  net->load_state_dict(read_safetensors(path), path);
  net->eval();
  return net;
}

std::unique_ptr<nn::Sequential> open_vgg16_teacher(const std::string& spec) {
  constexpr std::string_view kRandom = "random:";
  if (spec.rfind(kRandom, 0) == 0) {
    const std::string rest = spec.substr(kRandom.size());
    const std::size_t colon = rest.find(':');
    const std::string digits = rest.substr(0, colon);
    if (digits.empty() || digits.size() > 19 || digits.find_first_not_of("0123456789") != std::string::npos)
      fail("teacher spec " + quote(spec) + ": expected random:SEED[:INIT] with SEED a non-negative integer");
    WeightInit init = WeightInit::xavier;
    if (colon != std::string::npos) {
      try {
        init = parse_weight_init(rest.substr(colon + 1));
      } catch (const Error& e) {
        fail("teacher spec " + quote(spec) + ": " + e.what());
      }
    }
    auto net = vgg16_features();
    init_weights(*net, std::stoull(digits), init);
    net->eval();
    return net;
  }
  return load_vgg16_features(spec);
}

}  // namespace morphokd::models
