// Prints a SHA-256 of every op's outputs and gradients at training-sized shapes, per
// backend and mode, run at the thread count given on the command line. check_threads.sh
// runs it at 1-4 threads: deterministic lines must agree; fast (oneDNN) lines that differ
// are the ops deterministic mode reroutes. Every ops::Op must have a workload here.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "morphokd/io/sha256.hpp"
#include "morphokd/models/teacher.hpp"
#include "morphokd/models/vgg.hpp"
#include "morphokd/models/vgg16.hpp"
#include "morphokd/nn/frozen.hpp"
#include "morphokd/ops/ops.hpp"
#include "morphokd/random.hpp"
#include "morphokd/runtime.hpp"

using namespace morphokd;

namespace {

Tensor input(const Shape& s, std::uint64_t seed) {
  Tensor t = Tensor::empty(s);
  for (Index i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(2 * uniform01(seed, static_cast<std::uint64_t>(i)) - 1);
  return t;
}
Tensor like(const Shape& s) { return Tensor::full(s, 0.0f); }

std::string digest(const std::vector<Tensor>& outs) {
  std::string all;
  for (const Tensor& t : outs)
    all += sha256_hex({reinterpret_cast<const std::byte*>(t.data()), static_cast<std::size_t>(t.numel()) * sizeof(float)});
  return sha256_hex({reinterpret_cast<const std::byte*>(all.data()), all.size()}).substr(0, 16);
}

using Workload = std::function<std::vector<Tensor>()>;

Workload conv(Index n, Index ci, Index co, Index h, ops::ConvAlgorithm alg = ops::ConvAlgorithm::direct) {
  return [=] {
    const Tensor x = input({n, ci, h, h}, 1), w = input({co, ci, 3, 3}, 2), b = input({co}, 3), dy = input({n, co, h, h}, 4);
    Tensor y = like(dy.shape()), dx = like(x.shape()), dw = like(w.shape()), db = like(b.shape());
    ops::conv2d_forward(x, w, &b, y, alg);
    ops::conv2d_backward_data(dy, w, dx, alg);
    ops::conv2d_backward_weights(x, dy, dw, &db);
    return std::vector<Tensor>{y, dx, dw, db};
  };
}

Workload batchnorm(Index n, Index c, Index h, bool train) {
  return [=] {
    const Tensor x = input({n, c, h, h}, 5), g = input({c}, 6), be = input({c}, 7), dy = input(x.shape(), 8);
    Tensor mean = input({c}, 9), var = like({c}), y = like(x.shape()), dx = like(x.shape()), dg = like({c}), db = like({c});
    for (Index i = 0; i < c; ++i) var.data()[i] = 0.5f + static_cast<float>(i % 7) / 7;
    if (train) {
      ops::batchnorm_forward_train(x, g, be, 1e-5f, y, mean, var);
      ops::batchnorm_backward_train(x, dy, g, mean, var, 1e-5f, dx, &dg, &db);
    } else {
      ops::batchnorm_forward_eval(x, g, be, mean, var, 1e-5f, y);
      ops::batchnorm_backward_eval(x, dy, g, mean, var, 1e-5f, dx, &dg, &db);
    }
    return std::vector<Tensor>{y, mean, var, dx, dg, db};
  };
}

std::vector<std::pair<std::string, Workload>> workloads(ops::Op op) {
  const Shape act{64, 128, 32, 32};
  switch (op) {
    case ops::Op::conv2d:  // student B's layers and the teacher's widest
      return {{"conv2d 64x3x64x64->16", conv(64, 3, 16, 64)},   {"conv2d 64x16x64x64->16", conv(64, 16, 16, 64)},
              {"conv2d 64x16x32x32->128", conv(64, 16, 128, 32)}, {"conv2d 64x128x16x16->16", conv(64, 128, 16, 16)},
              {"conv2d 64x16x4x4->512", conv(64, 16, 512, 4)},   {"conv2d 64x512x4x4->16", conv(64, 512, 16, 4)},
              {"conv2d 37x256x8x8->256", conv(37, 256, 256, 8)},
              // a full Winograd chunk and a padded one (direct where oneDNN has no Winograd)
              {"conv2d winograd 66x64x16x16->64", conv(66, 64, 64, 16, ops::ConvAlgorithm::winograd)}};
    case ops::Op::relu:
      return {{"relu " + act.str(), [=] {
                 const Tensor x = input(act, 10), dy = input(act, 11);
                 Tensor y = like(act), dx = like(act);
                 ops::relu_forward(x, y);
                 ops::relu_backward(x, dy, dx);
                 return std::vector<Tensor>{y, dx};
               }}};
    case ops::Op::maxpool2x2:
      return {{"maxpool2x2 " + act.str(), [=] {
                 const Tensor x = input(act, 12), dy = input({64, 128, 16, 16}, 13);
                 Tensor y = like(dy.shape()), dx = like(act);
                 ops::PoolWorkspace ws;
                 ops::maxpool2x2_forward(x, y, ws);
                 ops::maxpool2x2_backward(dy, ws, dx);
                 return std::vector<Tensor>{y, dx};
               }}};
    case ops::Op::batchnorm_train:
      return {{"batchnorm_train 64x16x64x64", batchnorm(64, 16, 64, true)},
              {"batchnorm_train 64x128x32x32", batchnorm(64, 128, 32, true)},
              {"batchnorm_train 64x512x4x4", batchnorm(64, 512, 4, true)}};
    case ops::Op::batchnorm_eval:
      return {{"batchnorm_eval 64x16x64x64", batchnorm(64, 16, 64, false)}};
    case ops::Op::linear:
      return {{"linear 64x2048->512", [] {
                 const Tensor x = input({64, 2048}, 14), w = input({512, 2048}, 15), b = input({512}, 16), dy = input({64, 512}, 17);
                 Tensor y = like(dy.shape()), dx = like(x.shape()), dw = like(w.shape()), db = like(b.shape());
                 ops::linear_forward(x, w, &b, y);
                 ops::linear_backward_data(dy, w, dx);
                 ops::linear_backward_weights(x, dy, dw, &db);
                 return std::vector<Tensor>{y, dx, dw, db};
               }}};
    case ops::Op::global_avg_pool:
      return {{"global_avg_pool 64x512x8x8", [] {
                 const Tensor x = input({64, 512, 8, 8}, 18), dy = input({64, 512}, 19);
                 Tensor y = like(dy.shape()), dx = like(x.shape());
                 ops::global_avg_pool_forward(x, y);
                 ops::global_avg_pool_backward(dy, dx);
                 return std::vector<Tensor>{y, dx};
               }}};
    case ops::Op::softmax_cross_entropy:
      return {{"softmax_cross_entropy 256x10", [] {
                 const Tensor z = input({256, 10}, 20);
                 std::vector<std::int64_t> labels(256);
                 for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 10);
                 Tensor p = like(z.shape()), dz = like(z.shape()), loss = like({1});
                 loss.data()[0] = static_cast<float>(ops::softmax_cross_entropy_forward(z, labels, p));
                 ops::softmax_cross_entropy_backward(p, labels, 1.0f, dz);
                 return std::vector<Tensor>{p, dz, loss};
               }}};
    case ops::Op::distance:
      return {{"distance " + act.str(), [=] {
                 const Tensor a = input(act, 21), b = input(act, 22), dcos = input({64}, 23), dmse = input({64}, 24);
                 Tensor cos = like({64}), mse = like({64}), da = like(act), db = like(act);
                 ops::distance_forward(a, b, cos, mse);
                 ops::distance_backward(a, b, dcos, dmse, &da, &db);
                 return std::vector<Tensor>{cos, mse, da, db};
               }}};
    case ops::Op::kCount: break;
  }
  std::fprintf(stderr, "thread_probe: op %s has no workload\n", std::string(ops::op_name(op)).c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: thread_probe THREADS\n");
    return 2;
  }
  set_num_threads(std::atoi(argv[1]));
  std::vector<Backend> backends{Backend::reference};
  if (backend_available(Backend::onednn)) backends.push_back(Backend::onednn);
  // The teacher's forward-only chain (fused conv + ReLU, blocked layouts): cache and scoring,
  // in each precision this CPU runs.
  models::Teacher teacher = models::open_teacher("random:0", 1);
  const Tensor cells = input({64, 1, 64, 64}, 24);
  std::vector<std::size_t> taps;
  for (int k = 2; k <= 5; ++k) taps.push_back(models::pool_index(models::vgg16_spec(), k));
  for (Backend b : backends) {
    BackendScope scope(b);
    for (bool det : {true, false}) {
      if (b == Backend::reference && !det) continue;  // the reference kernels have no fast mode
      set_deterministic(det);
      const char* mode = det ? "deterministic" : "fast";
      for (int i = 0; i < static_cast<int>(ops::Op::kCount); ++i)
        for (const auto& [name, run] : workloads(static_cast<ops::Op>(i)))
          std::printf("%s %s | %s | %s\n", backend_name(b).data(), mode, name.c_str(), digest(run()).c_str());
      for (Precision p : kPrecisions) {
        if (p != Precision::fp32 && (b == Backend::reference || !precision_hardware(p))) continue;  // oneDNN's, where it runs
        std::vector<Tensor> maps;
        nn::FrozenForward::compile(*teacher.net, p)->forward(cells, taps, maps);
        std::printf("%s %s | teacher chain %s 64x1x64x64, pools 2-5 | %s\n", backend_name(b).data(), mode,
                    precision_name(p).data(), digest(maps).c_str());
      }
    }
  }
  return 0;
}
