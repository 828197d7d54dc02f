#include "morphokd/pipeline/pretrain.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numbers>

#include "morphokd/data/idx.hpp"
#include "morphokd/data/mhsma.hpp"
#include "morphokd/data/pretext.hpp"
#include "morphokd/data/transform.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/safetensors.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/models/bn_fold.hpp"
#include "morphokd/models/teacher.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/layers.hpp"
#include "morphokd/nn/optim.hpp"
#include "morphokd/ops/ops.hpp"
#include "morphokd/pipeline/progress.hpp"
#include "morphokd/random.hpp"
#include "morphokd/runtime.hpp"
#include "run_json.hpp"

namespace morphokd::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

// The checkpoint and the exported teacher record the configuration under the field names.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PretrainConfig, dataset, data_dir, init, input_norm, epochs, batch, lr, momentum,
                                   weight_decay, seed, limit)

namespace {

const models::VggSpec& vgg16_bn_spec() {
  static const models::VggSpec spec{models::vgg16_spec().cfg, /*bias=*/true, /*batch_norm=*/true};
  return spec;
}

PretrainConfig config_from(const json& j, const std::string& source) {
  try {
    return j.get<PretrainConfig>();
  } catch (const json::exception& e) {
    fail(source + ": bad pretraining configuration: " + e.what());
  }
}

void check_config(const PretrainConfig& c) {
  if (c.dataset != "cells-ssl" && c.dataset != "fashion-mnist")
    fail("--dataset: unknown " + quote(c.dataset) + " (expected cells-ssl or fashion-mnist)");
  if (c.epochs < 1) fail("--epochs must be at least 1");
  if (c.batch < 2) fail("--batch must be at least 2 (BatchNorm needs batch statistics)");
  if (!(c.lr > 0)) fail("--lr must be positive");
  if (!(c.momentum >= 0 && c.momentum < 1)) fail("--momentum must be in [0, 1)");
  if (!(c.weight_decay >= 0)) fail("--weight-decay must be >= 0");
  if (c.limit < 0) fail("--limit must be >= 0");
  data::InputTransform::parse(c.input_norm);
}

// The training images [N, 1, S, S] in [0, 1] and, for supervised sets, their labels.
struct Images {
  Tensor x;
  std::vector<std::int64_t> labels;  // empty for cells-ssl: labels are drawn per epoch
  int classes = 0;
};

Images load_images(const PretrainConfig& c) {
  Images im;
  if (c.dataset == "fashion-mnist") {
    data::LabelledImages d = data::load_idx_dataset(c.data_dir, "train", c.limit);
    const Index n = d.images.dim(0), h = d.images.dim(2), w = d.images.dim(3), s = 32;
    if (h > s || w > s) fail(c.data_dir + ": images are " + std::to_string(h) + "x" + std::to_string(w) + ", expected at most 32x32");
    im.x = Tensor::zeros({n, 1, s, s});  // centred on a 32x32 canvas: five 2x2 pools need a multiple of 32
    for (Index i = 0; i < n; ++i)
      for (Index r = 0; r < h; ++r)
        for (Index q = 0; q < w; ++q)
          im.x.data()[(i * s + r + (s - h) / 2) * s + q + (s - w) / 2] = d.images.data()[(i * h + r) * w + q];
    im.labels = std::move(d.labels);
    im.classes = d.classes;
    return im;
  }
  // cells-ssl: the unlabelled train and valid images (never test).
  const Tensor train = data::load_cells_npy((fs::path(c.data_dir) / "x_64_train.npy").string());
  const Tensor valid = data::load_cells_npy((fs::path(c.data_dir) / "x_64_valid.npy").string());
  Index n = train.dim(0) + valid.dim(0);
  if (c.limit > 0) n = std::min<Index>(n, c.limit);
  im.x = Tensor::empty({n, 1, train.dim(2), train.dim(3)});
  const Index from_train = std::min(n, train.dim(0));
  im.x.slice(0, from_train).copy_from(train.slice(0, from_train));
  if (n > from_train) im.x.slice(from_train, n).copy_from(valid.slice(0, n - from_train));
  im.classes = data::kRotationClasses;
  return im;
}

struct Net {
  std::unique_ptr<nn::Sequential> features, head;
  std::vector<nn::Parameter*> params;
};

Net make_net(const PretrainConfig& c, int classes) {
  Net net;
  net.features = models::vgg_features(vgg16_bn_spec(), 3);
  if (c.init.empty()) models::init_weights(*net.features, c.seed, models::WeightInit::kaiming);
  else models::load_plain_into_bn(*net.features, vgg16_bn_spec(), models::teacher_state_dict(c.init), c.init);
  net.head = std::make_unique<nn::Sequential>("head");
  net.head->add(std::make_unique<nn::GlobalAvgPool>());
  auto linear = std::make_unique<nn::Linear>(512, classes);
  const double bound = 1.0 / std::sqrt(512.0);  // PyTorch's Linear default, zero bias
  for (Index i = 0; i < linear->weight.value.numel(); ++i)
    linear->weight.value.data()[i] = static_cast<float>((2 * uniform01(splitmix64(c.seed ^ 0x48454144ull), static_cast<std::uint64_t>(i)) - 1) * bound);
  linear->bias.value.fill(0.0f);
  net.head->add(std::move(linear));
  for (auto* s : {net.features.get(), net.head.get()})
    for (auto& [name, p] : s->named_parameters()) net.params.push_back(p);
  return net;
}

SafetensorsFile checkpoint(Net& net, nn::Sgd& sgd, const PretrainConfig& c, int epochs_done, std::int64_t steps) {
  SafetensorsFile f = net.features->state_dict();
  for (auto& [name, e] : net.head->state_dict().tensors) f.tensors[name] = e;
  const auto& m = sgd.momentum_buffers();
  for (std::size_t k = 0; k < m.size(); ++k)
    f.tensors["sgd.momentum." + std::to_string(k)] = {StDType::f32, m[k].clone(), {}, std::vector<Index>(m[k].shape().dims().begin(), m[k].shape().dims().end())};
  f.metadata = {{"epochs_done", std::to_string(epochs_done)}, {"steps_done", std::to_string(steps)}, {"config", json(c).dump()}};
  seal(f);
  return f;
}

}  // namespace

std::string pretrain_teacher(const PretrainConfig& config, const std::string& out, bool resume, int stop_after) {
  const std::string ckpt_path = out + ".checkpoint.safetensors", log_path = out + ".log.jsonl";
  PretrainConfig c = config;
  SafetensorsFile ckpt;
  if (resume) {
    if (!fs::exists(ckpt_path)) fail(ckpt_path + ": no checkpoint to resume from");
    ckpt = read_safetensors(ckpt_path);
    check_seal(ckpt, ckpt_path);
    const auto it = ckpt.metadata.find("config");
    if (it == ckpt.metadata.end()) fail(ckpt_path + ": checkpoint has no configuration");
    const json j = json::parse(it->second, nullptr, false);
    if (j.is_discarded()) fail(ckpt_path + ": checkpoint configuration is not JSON");
    c = config_from(j, ckpt_path);
  } else {
    if (c.data_dir.empty()) c.data_dir = c.dataset == "fashion-mnist" ? "/usr/share/datasets/fashion-mnist" : "data/mhsma";
    if (fs::exists(out)) fail(out + ": already exists; choose another --out or delete it");
  }
  check_config(c);
  const Images im = load_images(c);
  const data::InputTransform input = data::InputTransform::make(c.input_norm, im.x);
  Net net = make_net(c, im.classes);
  nn::Sgd sgd(net.params, {static_cast<float>(c.lr), static_cast<float>(c.momentum), 0.0f, static_cast<float>(c.weight_decay), false});

  const Index n = im.x.dim(0), steps_per_epoch = (n + c.batch - 1) / c.batch;
  const std::int64_t total_steps = static_cast<std::int64_t>(steps_per_epoch) * c.epochs;
  int first_epoch = 0;
  std::int64_t step = 0;
  std::string log;
  if (resume) {
    net.features->load_state_dict(ckpt, ckpt_path);
    net.head->load_state_dict(ckpt, ckpt_path);
    auto& m = sgd.momentum_buffers();
    for (std::size_t k = 0; ckpt.contains("sgd.momentum." + std::to_string(k)); ++k)
      m.push_back(ckpt.tensor("sgd.momentum." + std::to_string(k), ckpt_path).clone());
    if (!m.empty() && m.size() != net.params.size()) fail(ckpt_path + ": checkpoint has momentum for " + std::to_string(m.size()) + " of " + std::to_string(net.params.size()) + " parameters");
    try {
      first_epoch = std::stoi(ckpt.metadata.at("epochs_done"));
      step = std::stoll(ckpt.metadata.at("steps_done"));
    } catch (const std::exception&) {
      fail(ckpt_path + ": checkpoint metadata is incomplete");
    }
    if (fs::exists(log_path)) {
      const auto bytes = read_file(log_path);
      log.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
    std::cout << "resuming after epoch " << first_epoch << "\n";
  }
  if (!fs::path(out).parent_path().empty()) fs::create_directories(fs::path(out).parent_path());

  Tensor batch, turned, rgb, dlogits, probs, dfeat;
  std::vector<std::int64_t> labels;
  std::vector<int> turns;
  const std::size_t last_feature = net.features->size() - 1, last_head = net.head->size() - 1;
  for (int epoch = first_epoch; epoch < c.epochs; ++epoch) {
    net.features->train();
    net.head->train();
    const std::vector<std::int64_t> order = permutation(n, splitmix64(c.seed ^ 0x50524554ull) + static_cast<std::uint64_t>(epoch));
    Progress bar("pretrain epoch " + std::to_string(epoch + 1) + "/" + std::to_string(c.epochs), static_cast<long>(n), "img");
    double loss_sum = 0;
    std::int64_t correct = 0;
    for (Index b = 0; b < n; b += c.batch) {
      const Index e = std::min(n, b + c.batch);
      const std::vector<std::int64_t> rows(order.begin() + b, order.begin() + e);
      batch = data::gather(im.x, rows);
      labels.clear();
      if (im.labels.empty()) {  // rotation prediction: the label is the number of quarter turns
        turns.clear();
        for (auto r : rows) turns.push_back(data::rotation_label(c.seed, static_cast<std::uint64_t>(epoch), r));
        data::rotate_quarter_turns(batch, turned, turns);
        batch = turned.clone();
        labels.assign(turns.begin(), turns.end());
      } else {
        for (auto r : rows) labels.push_back(im.labels[static_cast<std::size_t>(r)]);
      }
      input.apply(batch);
      input.to_rgb(batch, rgb);
      const Tensor& feats = net.features->forward(rgb);
      const Tensor& logits = net.head->forward(feats);
      fit_shape(probs, logits.shape());
      const double loss = ops::softmax_cross_entropy_forward(logits, labels, probs);
      if (!std::isfinite(loss)) fail("pretraining diverged at step " + std::to_string(step + 1) + " (loss " + std::to_string(loss) + "); lower --lr");
      fit_shape(dlogits, logits.shape());
      ops::softmax_cross_entropy_backward(probs, labels, 1.0f, dlogits);
      fit_shape(dfeat, feats.shape());
      net.head->backward({{last_head, dlogits}}, true, &dfeat);
      net.features->backward({{last_feature, dfeat}}, true, nullptr);
      // Cosine schedule over all steps of all epochs, from lr down to 0.
      sgd.options.lr = static_cast<float>(c.lr * 0.5 * (1.0 + std::cos(std::numbers::pi * static_cast<double>(step) / static_cast<double>(total_steps))));
      sgd.step();
      ++step;
      for (Index i = 0; i < e - b; ++i) {
        const float* p = probs.data() + i * im.classes;
        correct += std::max_element(p, p + im.classes) - p == labels[static_cast<std::size_t>(i)];
      }
      loss_sum += loss * static_cast<double>(e - b);
      bar.advance(static_cast<long>(e - b));
    }
    bar.finish();
    const json line = {{"epoch", epoch + 1},
                       {"steps", step},
                       {"loss", loss_sum / static_cast<double>(n)},
                       {"train_accuracy", static_cast<double>(correct) / static_cast<double>(n)},
                       {"seconds", bar.seconds()}};
    std::printf("pretrain epoch %3d/%d  loss %.4f  train accuracy %.4f  %.1f s\n", epoch + 1, c.epochs,
                line["loss"].get<double>(), line["train_accuracy"].get<double>(), bar.seconds());
    std::fflush(stdout);
    log += line.dump() + "\n";
    write_file_atomic(log_path, std::as_bytes(std::span<const char>(log.data(), log.size())));
    write_safetensors(ckpt_path, checkpoint(net, sgd, c, epoch + 1, step));
    if (epoch + 1 == stop_after && epoch + 1 < c.epochs) {
      std::cout << "stopped after epoch " << epoch + 1 << "; continue with --resume --out " << out << "\n";
      return "";
    }
  }

  net.features->eval();
  SafetensorsFile teacher = models::fold_batch_norm(*net.features, vgg16_bn_spec(), 3)->state_dict();
  teacher.metadata = {{"format", "morphokd-teacher"},
                      {"morphokd", std::string(version_string())},
                      {"backend", std::string(backend_name(current_backend()))},
                      {"threads", std::to_string(num_threads())},
                      {"config", json(c).dump()}};
  write_safetensors(out, teacher);
  const std::string sha = sha256_file(out);
  std::cout << "wrote " << out << " (VGG16, BatchNorm folded), SHA-256 " << sha << "\n";
  return sha;
}

}  // namespace morphokd::pipeline
