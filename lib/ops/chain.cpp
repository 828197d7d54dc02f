// InferenceChain and TrainingChain: validation, the reference path (the registered ops in
// turn) and the dispatch to the oneDNN plans.
#include "morphokd/ops/chain.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>

#include "morphokd/error.hpp"
#include "morphokd/ops/ops.hpp"
#include "morphokd_build_config.hpp"
#if MORPHOKD_HAS_ONEDNN
#include "onednn/onednn_ops.hpp"
#include "winograd_chunks.hpp"
#endif

namespace morphokd::ops {

struct InferenceChain::Plan {
  Backend backend;
  Shape in;
  std::vector<Tensor> acts;  // reference: every stage's output
  std::vector<Tensor> weights;  // reference bf16: the rounded weights, per conv stage
  Tensor input;                 // reference bf16: the rounded input; onednn Winograd: the padded last chunk
  std::vector<Tensor> chunk_out;  // onednn Winograd: the taps of one chunk
  PoolWorkspace ws;
#if MORPHOKD_HAS_ONEDNN
  std::unique_ptr<onednn::ChainPlan> onednn;
#endif
};

namespace {

// Round to the nearest bfloat16, ties to even (as oneDNN's conversion); NaN stays NaN.
void round_to_bf16(Tensor& t) {
  for (float& v : t.span()) {
    std::uint32_t b = std::bit_cast<std::uint32_t>(v);
    if ((b & 0x7fffffffu) > 0x7f800000u) continue;
    b += 0x7fffu + ((b >> 16) & 1u);
    v = std::bit_cast<float>(b & 0xffff0000u);
  }
}

// The ops-in-turn paths' outputs: out[i] a copy of acts[taps[i]].
void copy_taps(const std::vector<Tensor>& acts, std::span<const std::size_t> taps, std::vector<Tensor>& out) {
  out.resize(taps.size());
  for (std::size_t i = 0; i < taps.size(); ++i) {
    fit_shape(out[i], acts[taps[i]].shape());
    out[i].copy_from(acts[taps[i]]);
  }
}

// The rules InferenceChain's and GradientChain's stages follow; `who` names the chain.
void check_stages(const std::vector<ChainStage>& stages, const std::string& who) {
  check(!stages.empty(), who + ": no stages");
  for (const ChainStage& s : stages) {
    if (!s.weight) {
      check(!s.bias && !s.relu, who + ": a pool stage has no bias or ReLU");
      continue;
    }
    check_rank(*s.weight, 4, (who + " weight").c_str());
    if (s.bias) check_shape(*s.bias, {s.weight->dim(0)}, (who + " bias").c_str());
  }
}

// The output shape of stage `st` for input `in`; an Error naming `who` where they do not fit.
Shape stage_output(const ChainStage& st, const Shape& in, const std::string& who) {
  if (st.weight && (st.weight->dim(1) != in[1] || st.weight->dim(2) != 3 || st.weight->dim(3) != 3))
    fail(who + ": weights " + st.weight->shape().str() + " do not fit a 3x3 conv of input " + in.str());
  if (!st.weight && (in[2] < 2 || in[3] < 2)) fail(who + ": input " + in.str() + " is smaller than 2x2");
  return st.weight ? Shape{in[0], st.weight->dim(0), in[2], in[3]} : Shape{in[0], in[1], in[2] / 2, in[3] / 2};
}

}  // namespace

InferenceChain::InferenceChain(std::vector<ChainStage> stages, Precision precision)
    : stages_(std::move(stages)), precision_(precision) {
  check_stages(stages_, "InferenceChain");
}
InferenceChain::~InferenceChain() = default;
InferenceChain::InferenceChain(InferenceChain&&) noexcept = default;
InferenceChain& InferenceChain::operator=(InferenceChain&&) noexcept = default;

void InferenceChain::release() { plan_.reset(); }

void InferenceChain::plan(const Shape& in) {
  plan_ = std::make_unique<Plan>();
  plan_->backend = current_backend();
  plan_->in = in;
  Shape s = in;
  for (const ChainStage& st : stages_) {
    s = stage_output(st, s, "InferenceChain");
    if (plan_->backend == Backend::reference) plan_->acts.push_back(Tensor::empty(s));
  }
  if (plan_->backend == Backend::reference && precision_ == Precision::bf16) {
    plan_->input = Tensor::empty(in);
    for (const ChainStage& st : stages_) {
      plan_->weights.push_back(st.weight ? st.weight->clone() : Tensor());
      if (st.weight) round_to_bf16(plan_->weights.back());
    }
  }
#if MORPHOKD_HAS_ONEDNN
  if (plan_->backend == Backend::onednn) {
    check_precision_hardware(precision_);
    if (precision_ == Precision::fp32_winograd) plan_->input = Tensor::empty(in);  // the padded last chunk
    plan_->onednn = std::make_unique<onednn::ChainPlan>(stages_, in, precision_);
  }
#endif
}

void InferenceChain::forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out) {
  check_rank(x, 4, "InferenceChain input");
  check(x.is_contiguous(), "InferenceChain: input must be contiguous");
  for (std::size_t i = 0; i < taps.size(); ++i)
    check(taps[i] < stages_.size() && (i == 0 || taps[i] > taps[i - 1]), "InferenceChain: taps must be increasing stage indices");
#if MORPHOKD_HAS_ONEDNN
  if (current_backend() == Backend::onednn && precision_ == Precision::fp32_winograd) {
    forward_in_chunks(x, taps, out);
    return;
  }
#endif
  if (!plan_ || plan_->backend != current_backend() || !(plan_->in == x.shape())) plan(x.shape());
#if MORPHOKD_HAS_ONEDNN
  if (plan_->onednn) {
    plan_->onednn->run(x, taps, out);
    return;
  }
#endif
  std::vector<Tensor>& acts = plan_->acts;
  const bool bf16 = precision_ == Precision::bf16;
  if (bf16) {
    plan_->input.copy_from(x);
    round_to_bf16(plan_->input);
  }
  for (std::size_t s = 0; s < stages_.size(); ++s) {
    const Tensor& in = s > 0 ? acts[s - 1] : bf16 ? plan_->input : x;
    const ChainStage& st = stages_[s];
    if (!st.weight) {  // the max of bf16 values is one of them: nothing to round
      maxpool2x2_forward(in, acts[s], plan_->ws);
      continue;
    }
    conv2d_forward(in, bf16 ? plan_->weights[s] : *st.weight, st.bias, acts[s]);
    if (st.relu) relu_forward(acts[s], acts[s]);
    if (bf16) round_to_bf16(acts[s]);
  }
  copy_taps(acts, taps, out);
}

#if MORPHOKD_HAS_ONEDNN
void InferenceChain::forward_in_chunks(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out) {
  const Shape chunk = x.shape().with_batch(kWinogradChunk);
  if (!plan_ || plan_->backend != Backend::onednn || !(plan_->in == chunk)) plan(chunk);
  out.resize(taps.size());
  for_each_winograd_chunk(x, [&](const Shape&) { return plan_->input; }, [&](const Tensor& part, Index first, Index k) {
    plan_->onednn->run(part, taps, plan_->chunk_out);
    for (std::size_t i = 0; i < taps.size(); ++i) {
      const Tensor& got = plan_->chunk_out[i];
      const Shape whole = got.shape().with_batch(x.dim(0));
      fit_shape(out[i], whole);
      const Index per = got.numel() / kWinogradChunk;
      std::copy_n(got.data(), k * per, out[i].data() + first * per);
    }
  });
}
#endif

struct GradientChain::Plan {
  Backend backend;
  bool deterministic;  // the Winograd kernels are planned per mode
  Shape in;            // onednn Winograd: a whole chunk
  std::vector<std::size_t> taps;  // planned for (onednn: untapped outputs may not be kept)
  Index images = 0;    // the last forward's
  std::vector<Shape> out;  // each stage's output at `in`
  std::vector<Tensor> acts;  // reference: every stage's output
  std::vector<PoolWorkspace> ws;
  Tensor grads[2];  // reference: ping-pong, flat, viewed at each gradient's shape
  // onednn Winograd, fewer images than a chunk: the input, the taps and the gradients padded
  Tensor input, dx;
  std::vector<Tensor> chunk_out, chunk_grads;
#if MORPHOKD_HAS_ONEDNN
  std::unique_ptr<onednn::GradPlan> onednn;
#endif
};

GradientChain::GradientChain(std::vector<ChainStage> stages, ConvAlgorithm algorithm)
    : stages_(std::move(stages)), algorithm_(algorithm) {
  check_stages(stages_, "GradientChain");
}
GradientChain::~GradientChain() = default;
GradientChain::GradientChain(GradientChain&&) noexcept = default;
GradientChain& GradientChain::operator=(GradientChain&&) noexcept = default;

void GradientChain::release() { plan_.reset(); }

void GradientChain::forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out) {
  check_rank(x, 4, "GradientChain input");
  check(x.is_contiguous(), "GradientChain: input must be contiguous");
  check(!taps.empty(), "GradientChain: no taps");
  for (std::size_t i = 0; i < taps.size(); ++i)
    check(taps[i] < stages_.size() && (i == 0 || taps[i] > taps[i - 1]), "GradientChain: taps must be increasing stage indices");
  const bool chunked = MORPHOKD_HAS_ONEDNN && current_backend() == Backend::onednn && algorithm_ == ConvAlgorithm::winograd;
  if (chunked) {
    check_winograd_threads();
    check(x.dim(0) <= kWinogradChunk, "GradientChain: Winograd takes at most " + std::to_string(kWinogradChunk) +
                                          " images a pass, got " + std::to_string(x.dim(0)));
  }
  const Shape in = chunked ? x.shape().with_batch(kWinogradChunk) : x.shape();
  if (!plan_ || plan_->backend != current_backend() || plan_->deterministic != deterministic() || !(plan_->in == in) ||
      !std::ranges::equal(plan_->taps, taps)) {
    plan_.reset();  // its buffers freed before the new plan's are taken
    auto plan = std::make_unique<Plan>();
    plan->backend = current_backend();
    plan->deterministic = deterministic();
    plan->in = in;
    plan->taps.assign(taps.begin(), taps.end());
    Shape s = in;
    for (const ChainStage& st : stages_) {
      s = stage_output(st, s, "GradientChain");
      plan->out.push_back(s);
      if (plan->backend != Backend::reference) continue;
      plan->acts.push_back(Tensor::empty(s));
      plan->ws.emplace_back();
    }
#if MORPHOKD_HAS_ONEDNN
    if (plan->backend == Backend::onednn) plan->onednn = std::make_unique<onednn::GradPlan>(stages_, in, taps, algorithm_);
#endif
    plan_ = std::move(plan);
  }
  plan_->images = x.dim(0);
#if MORPHOKD_HAS_ONEDNN
  if (plan_->onednn) {
    if (x.shape() == in) {
      plan_->onednn->forward(x, out);
      return;
    }
    fit_shape(plan_->input, in);
    plan_->input.fill(0.0f);
    std::copy_n(x.data(), x.numel(), plan_->input.data());
    plan_->onednn->forward(plan_->input, plan_->chunk_out);
    out.resize(taps.size());
    for (std::size_t i = 0; i < taps.size(); ++i) {
      fit_shape(out[i], plan_->chunk_out[i].shape().with_batch(x.dim(0)));
      std::copy_n(plan_->chunk_out[i].data(), out[i].numel(), out[i].data());
    }
    return;
  }
#endif
  std::vector<Tensor>& acts = plan_->acts;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    const ChainStage& st = stages_[i];
    const Tensor& below = i > 0 ? acts[i - 1] : x;
    if (!st.weight) {
      maxpool2x2_forward(below, acts[i], plan_->ws[i]);
      continue;
    }
    conv2d_forward(below, *st.weight, st.bias, acts[i], algorithm_);
    if (st.relu) relu_forward(acts[i], acts[i]);
  }
  copy_taps(acts, taps, out);
}

void GradientChain::backward(std::span<const Tensor> grads, Tensor& dx) {
  check(plan_ != nullptr, "GradientChain: backward before forward");
  check(grads.size() == plan_->taps.size(), "GradientChain: one gradient per tap of the last forward");
  const Index n = plan_->images;
  for (std::size_t i = 0; i < grads.size(); ++i) {
    check_shape(grads[i], plan_->out[plan_->taps[i]].with_batch(n), "GradientChain output gradient");
    check(grads[i].is_contiguous(), "GradientChain: gradients must be contiguous");
  }
  fit_shape(dx, plan_->in.with_batch(n));
#if MORPHOKD_HAS_ONEDNN
  if (plan_->onednn) {
    if (n == plan_->in[0]) {
      plan_->onednn->backward(grads, dx);
      return;
    }
    plan_->chunk_grads.resize(grads.size());
    for (std::size_t i = 0; i < grads.size(); ++i) {
      Tensor& g = plan_->chunk_grads[i];
      fit_shape(g, plan_->out[plan_->taps[i]]);
      g.fill(0.0f);
      std::copy_n(grads[i].data(), grads[i].numel(), g.data());
    }
    fit_shape(plan_->dx, plan_->in);
    plan_->onednn->backward(plan_->chunk_grads, plan_->dx);
    std::copy_n(plan_->dx.data(), dx.numel(), dx.data());
    return;
  }
#endif
  const std::vector<Tensor>& acts = plan_->acts;
  Index largest = 0;
  for (const Tensor& a : acts) largest = std::max(largest, a.numel());
  for (Tensor& g : plan_->grads) fit_capacity(g, largest);
  int cur = 0;  // the buffer holding the gradient of stage i's output
  auto view = [&](int k, const Shape& s) { return Tensor::wrap(plan_->grads[k].data(), s); };
  std::size_t next = plan_->taps.size();
  for (std::size_t i = plan_->taps.back() + 1; i-- > 0;) {
    const ChainStage& st = stages_[i];
    Tensor dy = view(cur, acts[i].shape());
    if (next > 0 && plan_->taps[next - 1] == i) {  // a gradient enters here: the first, or added
      --next;
      if (next + 1 == plan_->taps.size()) dy.copy_from(grads[next]);
      else dy.add_from(grads[next]);
    }
    Tensor into = i > 0 ? view(1 - cur, acts[i - 1].shape()) : dx;
    if (!st.weight) {
      maxpool2x2_backward(dy, plan_->ws[i], into);
    } else {
      if (st.relu) relu_backward(acts[i], dy, dy);
      conv2d_backward_data(dy, *st.weight, into, algorithm_);
    }
    cur = 1 - cur;
  }
}

// The ops in turn keep, per block, what the backward passes read: a conv block's conv output
// (the batch norm's input) and its output after the ReLU (the ReLU's mask), a pool's output
// and winners.
struct TrainingChain::Plan {
  bool blocked = false;
  Shape in;
  std::vector<std::size_t> taps;  // planned for (blocked: untapped outputs may not be kept)
  std::vector<Shape> out;  // each block's output
  Tensor x;                // the last forward's input (its storage shared)
  std::vector<Tensor> conv_out, acts;
  std::vector<PoolWorkspace> ws;
  Tensor grads[2];  // ping-pong, flat, viewed at each gradient's shape
#if MORPHOKD_HAS_ONEDNN
  std::unique_ptr<onednn::TrainPlan> onednn;
#endif
};

TrainingChain::TrainingChain(std::vector<TrainBlock> blocks) : blocks_(std::move(blocks)) {
  check(!blocks_.empty(), "TrainingChain: no blocks");
  for (const TrainBlock& b : blocks_) {
    const std::vector<const Tensor*> bn{b.gamma, b.beta, b.batch_mean, b.batch_var, b.gamma_grad, b.beta_grad};
    const auto set = [](const Tensor* t) { return t != nullptr; };
    const bool some_bn = std::any_of(bn.begin(), bn.end(), set);
    if (b.is_pool()) {
      check(!b.bias && !b.weight_grad && !b.bias_grad && !some_bn, "TrainingChain: a pool block takes no tensors");
      continue;
    }
    check(b.weight_grad && (b.bias == nullptr) == (b.bias_grad == nullptr) && (!some_bn || std::all_of(bn.begin(), bn.end(), set)),
          "TrainingChain: a conv block needs its weight gradient, a bias with its gradient or neither, all batch-norm tensors or none");
    check_rank(*b.weight, 4, "TrainingChain weight");
    check_shape(*b.weight_grad, b.weight->shape(), "TrainingChain weight gradient");
    const Shape c{b.weight->dim(0)};
    for (const Tensor* t : bn)
      if (t) check_shape(*t, c, "TrainingChain batch-norm tensor");
    if (b.bias) {
      check_shape(*b.bias, c, "TrainingChain bias");
      check_shape(*b.bias_grad, c, "TrainingChain bias gradient");
    }
  }
}
TrainingChain::~TrainingChain() = default;
TrainingChain::TrainingChain(TrainingChain&&) noexcept = default;
TrainingChain& TrainingChain::operator=(TrainingChain&&) noexcept = default;

bool TrainingChain::blocked() { return MORPHOKD_HAS_ONEDNN && current_backend() == Backend::onednn && !deterministic(); }

void TrainingChain::release() {
  plan_.reset();
  arena_.clear();
}

void TrainingChain::forward(const Tensor& x, std::span<const std::size_t> taps, std::vector<Tensor>& out) {
  check_rank(x, 4, "TrainingChain input");
  check(x.is_contiguous(), "TrainingChain: input must be contiguous");
  check(!taps.empty(), "TrainingChain: no taps");
  for (std::size_t i = 0; i < taps.size(); ++i)
    check(taps[i] < blocks_.size() && (i == 0 || taps[i] > taps[i - 1]), "TrainingChain: taps must be increasing block indices");
  if (!plan_ || plan_->blocked != blocked() || !(plan_->in == x.shape()) || !std::ranges::equal(plan_->taps, taps)) {
    plan_.reset();  // before the new plan takes the arena's slots; it replaces the old only once made
    auto plan = std::make_unique<Plan>();
    plan->blocked = blocked();
    plan->in = x.shape();
    plan->taps.assign(taps.begin(), taps.end());
    Shape s = x.shape();
    for (const TrainBlock& b : blocks_) {
      if (!b.is_pool() && (b.weight->dim(1) != s[1] || b.weight->dim(2) != 3 || b.weight->dim(3) != 3))
        fail("TrainingChain: weights " + b.weight->shape().str() + " do not fit a 3x3 conv of input " + s.str());
      if (b.is_pool() && (s[2] < 2 || s[3] < 2)) fail("TrainingChain: input " + s.str() + " is smaller than 2x2");
      s = b.is_pool() ? Shape{s[0], s[1], s[2] / 2, s[3] / 2} : Shape{s[0], b.weight->dim(0), s[2], s[3]};
      plan->out.push_back(s);
      if (plan->blocked) continue;
      plan->conv_out.push_back(b.has_bn() ? Tensor::empty(s) : Tensor());
      plan->acts.push_back(Tensor::empty(s));
      plan->ws.emplace_back();
    }
#if MORPHOKD_HAS_ONEDNN
    if (plan->blocked) plan->onednn = std::make_unique<onednn::TrainPlan>(blocks_, x.shape(), taps, arena_);
#endif
    plan_ = std::move(plan);
  }
  taps_.assign(taps.begin(), taps.end());
  plan_->x = x;
#if MORPHOKD_HAS_ONEDNN
  if (plan_->onednn) {
    plan_->onednn->forward(x, taps, out);
    return;
  }
#endif
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    const TrainBlock& b = blocks_[i];
    const Tensor& in = i > 0 ? plan_->acts[i - 1] : x;
    if (b.is_pool()) {
      maxpool2x2_forward(in, plan_->acts[i], plan_->ws[i]);
      continue;
    }
    if (b.has_bn()) {
      conv2d_forward(in, *b.weight, b.bias, plan_->conv_out[i]);
      batchnorm_forward_train(plan_->conv_out[i], *b.gamma, *b.beta, b.eps, plan_->acts[i], *b.batch_mean, *b.batch_var);
    } else {
      conv2d_forward(in, *b.weight, b.bias, plan_->acts[i]);
    }
    relu_forward(plan_->acts[i], plan_->acts[i]);
  }
  copy_taps(plan_->acts, taps, out);
}

void TrainingChain::backward(std::span<const Tensor> grads) {
  check(plan_ != nullptr && !taps_.empty(), "TrainingChain: backward before forward");
  check(grads.size() == taps_.size(), "TrainingChain: one gradient per tap of the last forward");
  for (std::size_t i = 0; i < grads.size(); ++i) {
    check_shape(grads[i], plan_->out[taps_[i]], "TrainingChain output gradient");
    check(grads[i].is_contiguous(), "TrainingChain: gradients must be contiguous");
  }
#if MORPHOKD_HAS_ONEDNN
  if (plan_->onednn) {
    plan_->onednn->backward(taps_, grads);
    return;
  }
#endif
  Index largest = 0;
  for (const Tensor& a : plan_->acts) largest = std::max(largest, a.numel());
  for (Tensor& g : plan_->grads) fit_capacity(g, largest);
  int cur = 0;  // the buffer holding the gradient of block i's output
  auto view = [&](int k, const Shape& s) { return Tensor::wrap(plan_->grads[k].data(), s); };
  std::size_t next = taps_.size();
  for (std::size_t i = taps_.back() + 1; i-- > 0;) {
    const TrainBlock& b = blocks_[i];
    const Tensor& in = i > 0 ? plan_->acts[i - 1] : plan_->x;
    Tensor dy = view(cur, plan_->acts[i].shape());
    if (next > 0 && taps_[next - 1] == i) {  // the loss's gradient enters here
      --next;
      if (next + 1 == taps_.size()) dy.copy_from(grads[next]);
      else dy.add_from(grads[next]);
    }
    if (b.is_pool()) {
      if (i == 0) break;
      Tensor dx = view(1 - cur, in.shape());
      maxpool2x2_backward(dy, plan_->ws[i], dx);
      cur = 1 - cur;
      continue;
    }
    relu_backward(plan_->acts[i], dy, dy);
    if (b.has_bn()) {
      cur = 1 - cur;
      Tensor d_bn_in = view(cur, dy.shape());
      batchnorm_backward_train(plan_->conv_out[i], dy, *b.gamma, *b.batch_mean, *b.batch_var, b.eps, d_bn_in, b.gamma_grad, b.beta_grad);
    }
    const Tensor dconv = view(cur, dy.shape());
    conv2d_backward_weights(in, dconv, *b.weight_grad, b.bias_grad);
    if (i == 0) break;
    cur = 1 - cur;
    Tensor dx = view(cur, in.shape());
    conv2d_backward_data(dconv, *b.weight, dx);
  }
}

}  // namespace morphokd::ops
