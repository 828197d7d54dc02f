// Module indices as a chain's stage or block indices (FrozenForward, TrainChain).
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "morphokd/error.hpp"

namespace morphokd::nn::detail {

inline constexpr std::size_t kNoOutput = static_cast<std::size_t>(-1);  // a module inside a fused step

// out[i] = index_of[taps[i]]; a module without an output of its own is an error naming `who`
// and `why`.
inline void chain_taps(std::span<const std::size_t> taps, const std::vector<std::size_t>& index_of, const char* who,
                       const char* why, std::vector<std::size_t>& out) {
  out.clear();
  for (std::size_t t : taps) {
    check(t < index_of.size(), std::string(who) + ": module " + std::to_string(t) + " does not exist");
    check(index_of[t] != kNoOutput, std::string(who) + ": module " + std::to_string(t) + " has no output of its own (" + why + ")");
    out.push_back(index_of[t]);
  }
}

}  // namespace morphokd::nn::detail
