#include "morphokd/data/pretext.hpp"

#include "morphokd/error.hpp"
#include "morphokd/random.hpp"

namespace morphokd::data {

int rotation_label(std::uint64_t seed, std::uint64_t epoch, std::int64_t id) {
  const std::uint64_t stream = splitmix64(seed ^ 0x524f5441ull) + epoch;  // "ROTA"
  return static_cast<int>(uniform01(stream, static_cast<std::uint64_t>(id)) * kRotationClasses);
}

void rotate_quarter_turns(const Tensor& in, Tensor& out, std::span<const int> k) {
  check(in.rank() == 4 && in.dim(2) == in.dim(3), "rotate_quarter_turns: cells must be square [N, C, H, H]");
  check(static_cast<Index>(k.size()) == in.dim(0), "rotate_quarter_turns: one turn count per cell");
  fit_shape(out, in.shape());
  const Index n = in.dim(0), c = in.dim(1), h = in.dim(2);
  for (Index i = 0; i < n; ++i) {
    const int turns = ((k[static_cast<std::size_t>(i)] % 4) + 4) % 4;
    for (Index ch = 0; ch < c; ++ch) {
      const float* src = in.data() + (i * c + ch) * h * h;
      float* dst = out.data() + (i * c + ch) * h * h;
      for (Index r = 0; r < h; ++r)
        for (Index q = 0; q < h; ++q) {
          // numpy.rot90(x, 1)[r, q] = x[q, H-1-r]; apply it `turns` times in closed form.
          Index y = r, x = q;
          for (int t = 0; t < turns; ++t) {
            const Index ny = x, nx = h - 1 - y;
            y = ny, x = nx;
          }
          dst[r * h + q] = src[y * h + x];
        }
    }
  }
}

}  // namespace morphokd::data
