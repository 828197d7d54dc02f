#include "op_cases.hpp"

#include "ops/reference/kernels.hpp"

namespace morphokd::test {

namespace {

using V = std::vector<Shape>;
using K = InputKind;

// winograd: the reference stays direct, so the backends agree within the harness's 1e-5
// (measured ~1e-6) but not bit for bit on integers (its transforms have fractions).
OpCase conv2d(Index n, Index ci, Index co, Index h, Index w, bool bias, ops::ConvAlgorithm alg = ops::ConvAlgorithm::direct) {
  const ref::ConvDims d{n, ci, co, h, w};
  const bool winograd = alg == ops::ConvAlgorithm::winograd;
  OpCase c{ops::Op::conv2d,
           "conv2d x[" + std::to_string(n) + "," + std::to_string(ci) + "," + std::to_string(h) + "," + std::to_string(w) +
               "] co=" + std::to_string(co) + (bias ? " bias" : "") + (winograd ? " winograd" : ""),
           {{n, ci, h, w}, {co, ci, 3, 3}}, {K::uniform, K::uniform}, {true, true}, {{n, co, h, w}}};
  if (bias) {
    c.inputs.push_back({co});
    c.kinds.push_back(K::uniform);
    c.differentiable.push_back(true);
  }
  c.fwd_d = [d, bias](auto& in, auto& out) { ref::conv2d_forward(d, in[0], in[1], bias ? in[2] : nullptr, out[0]); };
  c.bwd_d = [d, bias](auto& in, auto&, auto& dout, auto& din) {
    ref::conv2d_backward_data(d, dout[0], in[1], din[0]);
    ref::conv2d_backward_weights(d, in[0], dout[0], din[1], bias ? din[2] : nullptr);
  };
  c.fwd_f = [bias, alg](auto& in, auto& out) { ops::conv2d_forward(in[0], in[1], bias ? &in[2] : nullptr, out[0], alg); };
  c.bwd_f = [bias, alg](auto& in, auto&, auto& dout, auto& din) {
    ops::conv2d_backward_data(dout[0], in[1], din[0], alg);
    ops::conv2d_backward_weights(in[0], dout[0], din[1], bias ? &din[2] : nullptr);
  };
  c.exact_on_integers = !winograd;
  return c;
}

OpCase relu(const Shape& s) {
  OpCase c{ops::Op::relu, "relu " + s.str(), {s}, {K::no_kinks}, {true}, {s}};
  c.fwd_d = [n = s.numel()](auto& in, auto& out) { ref::relu_forward(n, in[0], out[0]); };
  c.bwd_d = [n = s.numel()](auto& in, auto&, auto& dout, auto& din) { ref::relu_backward(n, in[0], dout[0], din[0]); };
  c.fwd_f = [](auto& in, auto& out) { ops::relu_forward(in[0], out[0]); };
  c.bwd_f = [](auto& in, auto&, auto& dout, auto& din) { ops::relu_backward(in[0], dout[0], din[0]); };
  c.exact_on_integers = true;
  return c;
}

OpCase maxpool(Index n, Index ch, Index h, Index w) {
  const ref::PoolDims d{n, ch, h, w};
  const Shape in{n, ch, h, w}, out{n, ch, h / 2, w / 2};
  OpCase c{ops::Op::maxpool2x2, "maxpool2x2 " + in.str(), {in}, {K::no_kinks}, {true}, {out}};
  c.fwd_d = [d, m = out.numel()](auto& in, auto& out) {
    std::vector<std::uint8_t> arg(static_cast<std::size_t>(m));
    ref::maxpool2x2_forward(d, in[0], out[0], arg.data());
  };
  c.bwd_d = [d, m = out.numel()](auto& in, auto&, auto& dout, auto& din) {
    std::vector<std::uint8_t> arg(static_cast<std::size_t>(m));
    std::vector<double> y(static_cast<std::size_t>(m));
    ref::maxpool2x2_forward(d, in[0], y.data(), arg.data());
    ref::maxpool2x2_backward(d, dout[0], arg.data(), din[0]);
  };
  c.fwd_f = [](auto& in, auto& out) {
    ops::PoolWorkspace ws;
    ops::maxpool2x2_forward(in[0], out[0], ws);
  };
  c.bwd_f = [out](auto& in, auto&, auto& dout, auto& din) {
    ops::PoolWorkspace ws;
    Tensor y = Tensor::empty(out);
    ops::maxpool2x2_forward(in[0], y, ws);
    ops::maxpool2x2_backward(dout[0], ws, din[0]);
  };
  c.exact_on_integers = true;
  return c;
}

constexpr float kBnEps = 1e-5f;

OpCase batchnorm_train(Index n, Index ch, Index h, Index w) {
  const ref::BnDims d{n, ch, h * w};
  const Shape x{n, ch, h, w};
  OpCase c{ops::Op::batchnorm_train, "batchnorm_train " + x.str(), {x, {ch}, {ch}},
           {K::uniform, K::positive, K::uniform}, {true, true, true}, {x}};
  c.fwd_d = [d](auto& in, auto& out) {
    std::vector<double> mean(static_cast<std::size_t>(d.c)), var(mean.size());
    ref::batchnorm_stats(d, in[0], mean.data(), var.data());
    ref::batchnorm_apply(d, in[0], in[1], in[2], mean.data(), var.data(), double(kBnEps), out[0]);
  };
  c.bwd_d = [d](auto& in, auto&, auto& dout, auto& din) {
    std::vector<double> mean(static_cast<std::size_t>(d.c)), var(mean.size());
    ref::batchnorm_stats(d, in[0], mean.data(), var.data());
    ref::batchnorm_backward(d, in[0], dout[0], in[1], mean.data(), var.data(), double(kBnEps), true, din[0], din[1], din[2]);
  };
  c.fwd_f = [ch](auto& in, auto& out) {
    Tensor mean = Tensor::empty({ch}), var = Tensor::empty({ch});
    ops::batchnorm_forward_train(in[0], in[1], in[2], kBnEps, out[0], mean, var);
  };
  c.bwd_f = [ch](auto& in, auto&, auto& dout, auto& din) {
    Tensor mean = Tensor::empty({ch}), var = Tensor::empty({ch}), y = Tensor::empty(in[0].shape());
    ops::batchnorm_forward_train(in[0], in[1], in[2], kBnEps, y, mean, var);
    ops::batchnorm_backward_train(in[0], dout[0], in[1], mean, var, kBnEps, din[0], &din[1], &din[2]);
  };
  return c;
}

OpCase batchnorm_eval(Index n, Index ch, Index h, Index w) {
  const ref::BnDims d{n, ch, h * w};
  const Shape x{n, ch, h, w};
  OpCase c{ops::Op::batchnorm_eval, "batchnorm_eval " + x.str(), {x, {ch}, {ch}, {ch}, {ch}},
           {K::uniform, K::positive, K::uniform, K::uniform, K::positive}, {true, true, true, false, false}, {x}};
  c.fwd_d = [d](auto& in, auto& out) { ref::batchnorm_apply(d, in[0], in[1], in[2], in[3], in[4], double(kBnEps), out[0]); };
  c.bwd_d = [d](auto& in, auto&, auto& dout, auto& din) {
    ref::batchnorm_backward(d, in[0], dout[0], in[1], in[3], in[4], double(kBnEps), false, din[0], din[1], din[2]);
  };
  c.fwd_f = [](auto& in, auto& out) { ops::batchnorm_forward_eval(in[0], in[1], in[2], in[3], in[4], kBnEps, out[0]); };
  c.bwd_f = [](auto& in, auto&, auto& dout, auto& din) {
    ops::batchnorm_backward_eval(in[0], dout[0], in[1], in[3], in[4], kBnEps, din[0], &din[1], &din[2]);
  };
  return c;
}

OpCase linear(Index n, Index in_f, Index out_f, bool bias) {
  const ref::LinearDims d{n, in_f, out_f};
  OpCase c{ops::Op::linear,
           "linear n=" + std::to_string(n) + " " + std::to_string(in_f) + "->" + std::to_string(out_f) + (bias ? " bias" : ""),
           {{n, in_f}, {out_f, in_f}}, {K::uniform, K::uniform}, {true, true}, {{n, out_f}}};
  if (bias) {
    c.inputs.push_back({out_f});
    c.kinds.push_back(K::uniform);
    c.differentiable.push_back(true);
  }
  c.fwd_d = [d, bias](auto& in, auto& out) { ref::linear_forward(d, in[0], in[1], bias ? in[2] : nullptr, out[0]); };
  c.bwd_d = [d, bias](auto& in, auto&, auto& dout, auto& din) {
    ref::linear_backward_data(d, dout[0], in[1], din[0]);
    ref::linear_backward_weights(d, in[0], dout[0], din[1], bias ? din[2] : nullptr);
  };
  c.fwd_f = [bias](auto& in, auto& out) { ops::linear_forward(in[0], in[1], bias ? &in[2] : nullptr, out[0]); };
  c.bwd_f = [bias](auto& in, auto&, auto& dout, auto& din) {
    ops::linear_backward_data(dout[0], in[1], din[0]);
    ops::linear_backward_weights(in[0], dout[0], din[1], bias ? &din[2] : nullptr);
  };
  c.exact_on_integers = true;
  return c;
}

OpCase gap(Index n, Index ch, Index h, Index w) {
  const Shape x{n, ch, h, w};
  OpCase c{ops::Op::global_avg_pool, "global_avg_pool " + x.str(), {x}, {K::uniform}, {true}, {{n, ch}}};
  c.fwd_d = [p = n * ch, hw = h * w](auto& in, auto& out) { ref::global_avg_pool_forward(p, hw, in[0], out[0]); };
  c.bwd_d = [p = n * ch, hw = h * w](auto&, auto&, auto& dout, auto& din) { ref::global_avg_pool_backward(p, hw, dout[0], din[0]); };
  c.fwd_f = [](auto& in, auto& out) { ops::global_avg_pool_forward(in[0], out[0]); };
  c.bwd_f = [](auto&, auto&, auto& dout, auto& din) { ops::global_avg_pool_backward(dout[0], din[0]); };
  return c;
}

OpCase softmax_ce(Index n, Index k) {
  OpCase c{ops::Op::softmax_cross_entropy, "softmax_cross_entropy n=" + std::to_string(n) + " k=" + std::to_string(k),
           {{n, k}}, {K::uniform}, {true}, {{1}}};
  for (Index i = 0; i < n; ++i) c.labels.push_back((i * 7 + 3) % k);
  const auto labels = c.labels;
  c.fwd_d = [n, k, labels](auto& in, auto& out) {
    std::vector<double> p(static_cast<std::size_t>(n * k));
    out[0][0] = ref::softmax_cross_entropy_forward(n, k, in[0], labels.data(), p.data());
  };
  c.bwd_d = [n, k, labels](auto& in, auto&, auto& dout, auto& din) {
    std::vector<double> p(static_cast<std::size_t>(n * k));
    ref::softmax_cross_entropy_forward(n, k, in[0], labels.data(), p.data());
    ref::softmax_cross_entropy_backward(n, k, p.data(), labels.data(), dout[0][0], din[0]);
  };
  c.fwd_f = [labels](auto& in, auto& out) {
    Tensor p = Tensor::empty(in[0].shape());
    out[0].data()[0] = static_cast<float>(ops::softmax_cross_entropy_forward(in[0], labels, p));
  };
  c.bwd_f = [labels](auto& in, auto&, auto& dout, auto& din) {
    Tensor p = Tensor::empty(in[0].shape());
    ops::softmax_cross_entropy_forward(in[0], labels, p);
    ops::softmax_cross_entropy_backward(p, labels, dout[0].data()[0], din[0]);
  };
  return c;
}

OpCase distance(const Shape& s) {
  const Index n = s[0], d = s.numel() / s[0];
  OpCase c{ops::Op::distance, "distance " + s.str(), {s, s}, {K::uniform, K::uniform}, {true, true}, {{n}, {n}}};
  c.fwd_d = [n, d](auto& in, auto& out) { ref::distance_forward(n, d, in[0], in[1], out[0], out[1]); };
  c.bwd_d = [n, d](auto& in, auto&, auto& dout, auto& din) {
    ref::distance_backward(n, d, in[0], in[1], dout[0], dout[1], din[0], din[1]);
  };
  c.fwd_f = [](auto& in, auto& out) { ops::distance_forward(in[0], in[1], out[0], out[1]); };
  c.bwd_f = [](auto& in, auto&, auto& dout, auto& din) { ops::distance_backward(in[0], in[1], dout[0], dout[1], &din[0], &din[1]); };
  return c;
}

}  // namespace

std::vector<OpCase> all_op_cases() {
  return {
      conv2d(2, 3, 4, 5, 7, true), conv2d(9, 2, 3, 4, 5, true), conv2d(1, 1, 1, 1, 1, false), conv2d(3, 5, 2, 6, 3, true),
      conv2d(1, 16, 24, 9, 9, false), conv2d(2, 3, 64, 8, 8, true), conv2d(1, 16, 16, 8, 8, true, ops::ConvAlgorithm::winograd),
      relu({2, 3, 5, 7}), relu({1, 1, 1, 1}), relu({3, 17}),
      maxpool(2, 3, 6, 8), maxpool(1, 2, 5, 7), maxpool(3, 1, 2, 2), maxpool(1, 16, 9, 11),
      batchnorm_train(4, 3, 5, 5), batchnorm_train(2, 5, 3, 7), batchnorm_train(1, 2, 4, 4), batchnorm_train(3, 16, 1, 2),
      batchnorm_eval(4, 3, 5, 5), batchnorm_eval(1, 2, 1, 1), batchnorm_eval(2, 16, 3, 3),
      linear(3, 7, 5, true), linear(1, 16, 10, false), linear(5, 1, 3, true), linear(64, 33, 10, true),
      gap(2, 3, 4, 5), gap(1, 8, 1, 1), gap(3, 2, 7, 7),
      softmax_ce(4, 10), softmax_ce(1, 3), softmax_ce(7, 2),
      distance({3, 20}), distance({1, 5}), distance({4, 3, 5, 7}), distance({2, 257}),
  };
}

}  // namespace morphokd::test
