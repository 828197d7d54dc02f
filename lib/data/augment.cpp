#include "morphokd/data/augment.hpp"

#include <string>
#include <utility>
#include <vector>

#include "morphokd/error.hpp"
#include "morphokd/random.hpp"
#include "morphokd_build_config.hpp"

#if MORPHOKD_HAS_OPENCV
#include <opencv2/imgproc.hpp>
#endif

namespace morphokd::data {

AugmentOptions parse_augment(const std::string& text) {
  AugmentOptions o;
  // Split on every comma, keeping empty fields so "flip," is an error too.
  for (std::size_t begin = 0;;) {
    const std::size_t end = text.find(',', begin);
    const std::string word = text.substr(begin, end == std::string::npos ? end : end - begin);
    if (word == "flip") {
      o.hflip = o.vflip = true;
    } else if (word == "hflip") {
      o.hflip = true;
    } else if (word == "vflip") {
      o.vflip = true;
    } else if (word == "rotate") {
      o.rotate = true;
    } else if (word != "none") {
      fail("--augment: unknown augmentation " + quote(word) +
           " (expected none or a comma list of flip, hflip, vflip, rotate)");
    }
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return o;
}

std::string augment_string(const AugmentOptions& o) {
  std::string s;
  for (const auto& [on, name] : {std::pair{o.hflip, "hflip"}, {o.vflip, "vflip"}, {o.rotate, "rotate"}})
    if (on) {
      if (!s.empty()) s += ',';
      s += name;
    }
  return s.empty() ? "none" : s;
}

SampleAugment draw_augment(const AugmentOptions& o, std::uint64_t seed, std::uint64_t epoch, std::int64_t id) {
  // One stream per (seed, epoch), hashed so nearby seeds and epochs give unrelated streams;
  // sample `id` uses counters 4 id + {0: hflip, 1: vflip, 2: rotate?, 3: angle}.
  const std::uint64_t stream = splitmix64(seed * 1000003u + epoch);
  const std::uint64_t base = static_cast<std::uint64_t>(id) * 4;
  SampleAugment a;
  a.hflip = o.hflip && uniform01(stream, base + 0) < o.flip_probability;
  a.vflip = o.vflip && uniform01(stream, base + 1) < o.flip_probability;
  a.rotate = o.rotate && uniform01(stream, base + 2) < o.rotate_probability;
  a.degrees = (2 * uniform01(stream, base + 3) - 1) * o.max_degrees;
  return a;
}

void flip_cells(const Tensor& in, Tensor& out, int flip_variant) {
  // Probability 1: the asked-for flips happen to every cell, whatever the draws.
  const AugmentOptions certain{(flip_variant & 1) != 0, (flip_variant & 2) != 0, false, 1.0, 0.0, 0.0};
  const std::vector<std::int64_t> ids(static_cast<std::size_t>(in.dim(0)), 0);
  augment_batch(in, out, certain, 0, 0, ids);
}

void augment_batch(const Tensor& in, Tensor& out, const AugmentOptions& o, std::uint64_t seed, std::uint64_t epoch,
                   std::span<const std::int64_t> ids) {
  check_rank(in, 4, "augment input");
  check(in.dim(1) == 1, "augment input: expected [B, 1, H, W], got " + in.shape().str());
  check_shape(out, in.shape(), "augment output");
  check(in.is_contiguous() && out.is_contiguous(), "augment: tensors must be contiguous");
  check(in.data() != out.data(), "augment: output must not alias the input");
  const Index batch = in.dim(0), h = in.dim(2), w = in.dim(3);
  check(static_cast<Index>(ids.size()) == batch,
        "augment: " + std::to_string(ids.size()) + " sample ids for a batch of " + std::to_string(batch));
#if !MORPHOKD_HAS_OPENCV
  if (o.rotate) fail("--augment: rotate needs a build with MORPHOKD_WITH_OPENCV=ON");
#endif

#pragma omp parallel for schedule(static)
  for (Index b = 0; b < batch; ++b) {
    const SampleAugment a = draw_augment(o, seed, epoch, ids[static_cast<std::size_t>(b)]);
    const bool hflip = a.hflip, vflip = a.vflip, rotate = a.rotate;
    const double angle = a.degrees;
    const float* src = in.data() + b * h * w;
    float* dst = out.data() + b * h * w;
    // Flips go straight to `dst`, or to a scratch image that the rotation then reads.
    std::vector<float> flipped(rotate ? static_cast<std::size_t>(h * w) : 0);
    float* f = rotate ? flipped.data() : dst;
    for (Index y = 0; y < h; ++y) {
      const float* row = src + (vflip ? h - 1 - y : y) * w;
      float* to_row = f + y * w;
      for (Index x = 0; x < w; ++x) to_row[x] = row[hflip ? w - 1 - x : x];
    }
#if MORPHOKD_HAS_OPENCV
    if (rotate) {
      const cv::Mat from(static_cast<int>(h), static_cast<int>(w), CV_32F, f);
      cv::Mat to(static_cast<int>(h), static_cast<int>(w), CV_32F, dst);  // warpAffine writes in place
      // Positive angles turn counter-clockwise as displayed (OpenCV's convention).
      const cv::Mat m = cv::getRotationMatrix2D(cv::Point2f(static_cast<float>(w - 1) / 2, static_cast<float>(h - 1) / 2),
                                                angle, 1.0);
      cv::warpAffine(from, to, m, to.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
    }
#else
    (void)angle;
#endif
  }
}

}  // namespace morphokd::data
