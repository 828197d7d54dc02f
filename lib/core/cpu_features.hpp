// Which of our own hand-vectorized kernels this CPU runs (oneDNN picks its kernels itself,
// from layouts we may ask for by vendor). Each such kernel gives the same bits as its
// portable twin; a test compares the two.
#pragma once

namespace morphokd::detail {

inline bool cpu_has_avx512() {
#if defined(__x86_64__)
  static const bool has = __builtin_cpu_supports("avx512f");  // checks the OS keeps the zmm state too
  return has;
#else
  return false;
#endif
}

inline bool cpu_is_amd() {
#if defined(__x86_64__)
  static const bool is = __builtin_cpu_is("amd");
  return is;
#else
  return false;
#endif
}

}  // namespace morphokd::detail
