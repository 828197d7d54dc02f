// The op harness registry (ggml-style): every op in ops::Op registers cases here, each with
// its shapes, a double-precision path (the reference kernels instantiated for double) for
// finite-difference gradient checks, and a float path through the public ops for backend
// comparison. test_op_harness.cpp fails if an op has no case.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "morphokd/ops/ops.hpp"

namespace morphokd::test {

enum class InputKind {
  uniform,   // U(-1, 1)
  no_kinks,  // U(-1, 1) with |x| >= 0.05 (ReLU kink) and distinct values (max-pool ties)
  positive   // U(0.5, 1.5) (variances, scales)
};

using DoubleFwd = std::function<void(const std::vector<const double*>&, const std::vector<double*>&)>;
// inputs, outputs (from forward), output gradients -> input gradients
using DoubleBwd = std::function<void(const std::vector<const double*>&, const std::vector<const double*>&,
                                     const std::vector<const double*>&, const std::vector<double*>&)>;
using FloatFwd = std::function<void(const std::vector<Tensor>&, std::vector<Tensor>&)>;
using FloatBwd = std::function<void(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>&,
                                    std::vector<Tensor>&)>;

struct OpCase {
  OpCase(ops::Op op_, std::string label_, std::vector<Shape> inputs_, std::vector<InputKind> kinds_,
         std::vector<bool> differentiable_, std::vector<Shape> outputs_)
      : op(op_), label(std::move(label_)), inputs(std::move(inputs_)), kinds(std::move(kinds_)),
        differentiable(std::move(differentiable_)), outputs(std::move(outputs_)) {}
  ops::Op op;
  std::string label;
  std::vector<Shape> inputs;
  std::vector<InputKind> kinds;  // one per input
  std::vector<bool> differentiable;  // gradient checked / compared for this input
  std::vector<Shape> outputs;
  DoubleFwd fwd_d;
  DoubleBwd bwd_d;
  FloatFwd fwd_f;
  FloatBwd bwd_f;
  bool exact_on_integers = false;  // both backends must agree bit for bit on small-integer data
  std::vector<std::int64_t> labels;  // softmax cross-entropy only
};

std::vector<OpCase> all_op_cases();

}  // namespace morphokd::test
