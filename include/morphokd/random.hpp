// Counter-based random numbers: value i of stream `seed` is a pure function of (seed, i),
// so results never depend on thread count or call order.
#pragma once
#include <cstdint>
#include <numeric>
#include <vector>

namespace morphokd {

constexpr std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) with 24 random bits: exactly representable in float32.
constexpr double uniform01(std::uint64_t seed, std::uint64_t i) {
  return static_cast<double>(splitmix64((seed << 32) + i) >> 40) / 16777216.0;
}

// A permutation of 0..n-1 (Fisher-Yates) drawn from stream `stream` alone.
inline std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t stream) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(uniform01(stream, static_cast<std::uint64_t>(i)) * static_cast<double>(i + 1));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

}  // namespace morphokd
