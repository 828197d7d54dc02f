// The self-supervised pretext task of `pretrain-teacher --dataset cells-ssl`: rotation
// prediction (Gidaris, Singh & Komodakis, ICLR 2018). Each unlabelled cell is turned by k
// quarter turns and the network learns to tell k (4 classes). It needs no annotation, so
// it runs on the train and valid images only; the test images are never read.
#pragma once
#include <cstdint>
#include <span>

#include "morphokd/tensor.hpp"

namespace morphokd::data {

constexpr int kRotationClasses = 4;

// k in 0..3 for cell `id` in `epoch`: a pure function of (seed, epoch, id).
int rotation_label(std::uint64_t seed, std::uint64_t epoch, std::int64_t id);

// out[i] = in[i] turned counter-clockwise by k[i] quarter turns (numpy.rot90(x, k)); square
// [N, C, H, H] cells, exact copies of pixels.
void rotate_quarter_turns(const Tensor& in, Tensor& out, std::span<const int> k);

}  // namespace morphokd::data
