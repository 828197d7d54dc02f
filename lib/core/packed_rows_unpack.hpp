// How PackedRows::unpack writes one row, two ways that give the same bits: value by value, any
// CPU (the readable statement), and sixteen at a time with AVX-512's expand-load, where the CPU
// has it (the training epoch unpacks 3.8 M cached target values a step). Here for the test
// that runs both.
#pragma once
#include <cstdint>

#include "cpu_features.hpp"
#include "morphokd/tensor.hpp"

namespace morphokd::detail {

// out[j] for j in [0, n): the next of `values` where bit j of `mask` is set, else +0.0.
void unpack_row_portable(const std::uint64_t* mask, const float* values, Index n, float* out);
void unpack_row_avx512(const std::uint64_t* mask, const float* values, Index n, float* out);

}  // namespace morphokd::detail
