// InferenceChain: validation, the reference path (the registered ops in turn) and the
// dispatch to the oneDNN plan.
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

}  // namespace

InferenceChain::InferenceChain(std::vector<ChainStage> stages, Precision precision)
    : stages_(std::move(stages)), precision_(precision) {
  check(!stages_.empty(), "InferenceChain: no stages");
  for (const ChainStage& s : stages_) {
    if (!s.weight) {
      check(!s.bias && !s.relu, "InferenceChain: a pool stage has no bias or ReLU");
      continue;
    }
    check_rank(*s.weight, 4, "InferenceChain weight");
    if (s.bias) check_shape(*s.bias, {s.weight->dim(0)}, "InferenceChain bias");
  }
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
    if (st.weight && (st.weight->dim(1) != s[1] || st.weight->dim(2) != 3 || st.weight->dim(3) != 3))
      fail("InferenceChain: weights " + st.weight->shape().str() + " do not fit a 3x3 conv of input " + s.str());
    if (!st.weight && (s[2] < 2 || s[3] < 2)) fail("InferenceChain: input " + s.str() + " is smaller than 2x2");
    s = st.weight ? Shape{s[0], st.weight->dim(0), s[2], s[3]} : Shape{s[0], s[1], s[2] / 2, s[3] / 2};
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
  out.resize(taps.size());
  for (std::size_t i = 0; i < taps.size(); ++i) {
    fit_shape(out[i], acts[taps[i]].shape());
    out[i].copy_from(acts[taps[i]]);
  }
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

}  // namespace morphokd::ops
