// `morphokd info --student B`: the student's layers and parameter counts (the paper's Table 7).
#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "morphokd/models/students.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/layers.hpp"

namespace morphokd::cli {

Action add_info_command(CLI::App& app) {
  auto name = std::make_shared<std::string>("B");
  CLI::App* cmd = app.add_subcommand("info", "Describe a student network (layers, parameters)");
  cmd->add_option("--student", *name, "A, B or C")->capture_default_str();
  return [name] {
    const models::VggSpec& spec = models::student_spec(*name);
    auto net = models::vgg_features(spec, 3);
    Shape s{1, 3, 64, 64};
    std::cout << "student " << *name << " (64x64 input)\n";
    for (std::size_t i = 0; i < net->size(); ++i) {
      s = net->at(i).output_shape(s);
      Index params = 0;
      for (auto* p : net->at(i).parameters()) params += p->value.numel();
      std::printf("  features.%-3zu %-12s out %-18s params %lld\n", i, net->at(i).kind().c_str(), s.str().c_str(),
                  static_cast<long long>(params));
    }
    Index conv = 0, bn = 0;
    for (auto& [pname, p] : net->named_parameters()) (p->value.rank() == 4 ? conv : bn) += p->value.numel();
    std::printf("trainable parameters: %lld (conv weights %lld, BatchNorm %lld); teacher VGG16: %lld\n",
                static_cast<long long>(conv + bn), static_cast<long long>(conv), static_cast<long long>(bn),
                static_cast<long long>(models::vgg16_features()->num_parameters()));
  };
}

}  // namespace morphokd::cli
