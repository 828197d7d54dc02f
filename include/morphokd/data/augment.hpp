// Training augmentation of gray cells [B, 1, H, W]: random horizontal / vertical flips and
// rotations (bilinear, reflected border; METHOD.md). Every random choice for a sample is a
// pure function of (seed, epoch, sample id) -- stream splitmix64(seed * 1000003 + epoch),
// counters 4 id + {0 hflip, 1 vflip, 2 rotate?, 3 angle} -- so a run is reproducible
// whatever the thread count, batch order or resume point.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "morphokd/tensor.hpp"

namespace morphokd::data {

struct AugmentOptions {
  bool hflip = false, vflip = false, rotate = false;
  double flip_probability = 0.5;     // each flip independently
  double rotate_probability = 1.0;
  double max_degrees = 180.0;        // angle uniform in [-max, max]
  bool any() const { return hflip || vflip || rotate; }
};

// "none", or a comma list of "flip" (both flips), "hflip", "vflip", "rotate". Error naming --augment otherwise.
AugmentOptions parse_augment(const std::string& text);
std::string augment_string(const AugmentOptions& o);

// What augmentation sample `id` gets in `epoch`: the one place the random draws are made.
struct SampleAugment {
  bool hflip = false, vflip = false, rotate = false;
  double degrees = 0;
  int flip_variant() const { return (hflip ? 1 : 0) | (vflip ? 2 : 0); }  // 0..3
};
SampleAugment draw_augment(const AugmentOptions& o, std::uint64_t seed, std::uint64_t epoch, std::int64_t id);

// Every cell flipped alike (flip variant 0..3 as SampleAugment::flip_variant).
void flip_cells(const Tensor& in, Tensor& out, int flip_variant);

// out[b] = augmentation of in[b] for sample ids[b]. Rotation needs OpenCV (Error without).
void augment_batch(const Tensor& in, Tensor& out, const AugmentOptions& o, std::uint64_t seed, std::uint64_t epoch,
                   std::span<const std::int64_t> ids);

}  // namespace morphokd::data
