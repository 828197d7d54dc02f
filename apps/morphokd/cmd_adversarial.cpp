// `morphokd attack` (FGSM adversarial cells) and `morphokd localize` (anomaly maps).
#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "morphokd/pipeline/adversarial.hpp"

namespace morphokd::cli {

Action add_attack_command(CLI::App& app) {
  auto o = std::make_shared<pipeline::AttackOptions>();
  CLI::App* cmd = app.add_subcommand("attack", "FGSM: move cells one signed-gradient step to raise or lower the run's score");
  cmd->add_option("--run", o->run_dir, "Run directory")->required();
  cmd->add_option("--input", o->input, "Cells .npy (N x 64 x 64, uint8 or float 0-1) or a folder of images")->required();
  cmd->add_option("--eps", o->eps, "Step in pixel units of [0, 1], 0..1")->capture_default_str();
  cmd->add_option("--direction", o->direction, "raise (normal looks abnormal) or lower (abnormal looks normal)")->capture_default_str();
  cmd->add_option("--out", o->out, "Attacked cells .npy: float32 N x 64 x 64 in [0, 1]")->required();
  cmd->add_option("--figure", o->figure, "PNG of the FGSM steps of one cell: image, sign of gradient, attacked image");
  cmd->add_option("--figure-index", o->figure_index, "Which cell --figure shows")->capture_default_str();
  return [o] {
    const pipeline::AttackResult r = pipeline::attack_cells(*o);
    std::size_t moved = 0;
    double before = 0, after = 0;
    for (std::size_t i = 0; i < r.before.size(); ++i) {
      moved += o->direction == "raise" ? r.after[i] > r.before[i] : r.after[i] < r.before[i];
      before += r.before[i] / static_cast<double>(r.before.size());
      after += r.after[i] / static_cast<double>(r.after.size());
    }
    std::printf("wrote %s: %zu cells, eps %g, %s: score %s for %zu (%.1f%%), mean score %.5f -> %.5f\n", o->out.c_str(),
                r.before.size(), o->eps, o->direction.c_str(), o->direction == "raise" ? "rose" : "fell", moved,
                100.0 * static_cast<double>(moved) / static_cast<double>(r.before.size()), before, after);
  };
}

Action add_localize_command(CLI::App& app) {
  auto o = std::make_shared<pipeline::LocalizeOptions>();
  CLI::App* cmd = app.add_subcommand("localize", "Anomaly localization maps: |d score / d pixel| per cell, PNG overlays");
  cmd->add_option("--run", o->run_dir, "Run directory")->required();
  cmd->add_option("--input", o->input, "Cells .npy (N x 64 x 64, uint8 or float 0-1) or a folder of images");
  cmd->add_option("--split", o->split, "Instead of --input: this MHSMA split of the run's data and part");
  cmd->add_option("--label", o->label, "With --split: only cells with this label (0 normal, 1 abnormal)");
  cmd->add_option("--limit", o->limit, "Only the first N cells (0: all)")->capture_default_str();
  cmd->add_option("--method", o->method, "grad, smoothgrad or gbp (guided backpropagation)")->capture_default_str();
  cmd->add_option("--n", o->n, "SmoothGrad: noisy copies")->capture_default_str();
  cmd->add_option("--sigma-noise", o->sigma_noise, "SmoothGrad: noise sd as a fraction of the cell's max - min")->capture_default_str();
  cmd->add_option("--seed", o->seed, "SmoothGrad: noise stream")->capture_default_str();
  cmd->add_option("--blur-sigma", o->blur_sigma, "Gaussian blur of the shown map, pixels (raw .npy maps are not blurred)")->capture_default_str();
  cmd->add_option("--channels", o->channels, "gray: |sum of the channel copies' gradients|; mkd: sum of their |gradients|")->capture_default_str();
  cmd->add_option("--out", o->out, "New folder: {index}.npy raw maps, {index}.png overlays, grid.png, localize.json")->required();
  return [o] {
    const long n = pipeline::localize_cells(*o);
    std::cout << "wrote " << o->out << ": maps of " << n << " cells (" << o->method << ")\n";
  };
}

}  // namespace morphokd::cli
