// Process-wide compute settings: which backend runs the ops and how many threads they use.
#pragma once
#include <string>
#include <string_view>

namespace morphokd {

enum class Backend { reference, onednn };

std::string_view backend_name(Backend b);
Backend parse_backend(std::string_view name);  // throws Error on an unknown or compiled-out name
bool backend_available(Backend b);
// Initially MORPHOKD_BACKEND from the environment if set, else onednn when compiled in.
Backend current_backend();
void set_backend(Backend b);

// One setting for OpenMP and oneDNN (which runs on the OpenMP runtime). Default: all cores.
void set_num_threads(int n);
int num_threads();

// Deterministic mode (default on): results do not depend on the thread count. oneDNN's
// convolution weight gradients, batch norm statistics and parameter gradients, and inner
// products reduce in an order that follows the thread count (tests/unit/thread_probe.cpp);
// in this mode those ops run the reference kernels, whose reductions have a fixed order
// (the weight gradient's products on oneDNN's sgemm, each on one thread).
// Off: oneDNN throughout, faster, reproducible only at the same thread count.
void set_deterministic(bool on);
bool deterministic();

// Restores the previous backend when it goes out of scope (tests, audits).
class BackendScope {
 public:
  explicit BackendScope(Backend b) : saved_(current_backend()) { set_backend(b); }
  ~BackendScope() { set_backend(saved_); }
  BackendScope(const BackendScope&) = delete;
  BackendScope& operator=(const BackendScope&) = delete;

 private:
  Backend saved_;
};

// Sets deterministic mode until it goes out of scope (tests).
class DeterministicScope {
 public:
  explicit DeterministicScope(bool on) : saved_(deterministic()) { set_deterministic(on); }
  ~DeterministicScope() { set_deterministic(saved_); }
  DeterministicScope(const DeterministicScope&) = delete;
  DeterministicScope& operator=(const DeterministicScope&) = delete;

 private:
  bool saved_;
};

// Arithmetic of the frozen teacher: its forward-only passes (targets, scores) and, for
// fp32-winograd, its gradients too (FGSM, localization).
//   fp32           direct convolutions, as PyTorch's; the default, the auditable one
//   fp32-winograd  fp32 Winograd F(4x4, 3x3) convolutions: fewer multiplications, results
//                  within ~1e-5 (relative) of direct; oneDNN on AVX-512 CPUs, < 64 threads
//   bf16           inputs, weights and every stage's output rounded to bfloat16, sums in
//                  fp32; oneDNN on CPUs with AVX512-BF16 or AMX
enum class Precision { fp32, fp32_winograd, bf16 };
inline constexpr Precision kPrecisions[] = {Precision::fp32, Precision::fp32_winograd, Precision::bf16};
std::string_view precision_name(Precision p);
Precision parse_precision(std::string_view name);  // throws Error naming `name`
// Whether oneDNN runs `p` here (fp32 always).
bool precision_hardware(Precision p);
// Throws the one-line Error naming this CPU's ISA unless precision_hardware(p).
void check_precision_hardware(Precision p);

// Hands the C library's free heap pages back to the system (glibc's malloc_trim): between
// phases whose temporaries would otherwise stay resident. Nothing elsewhere.
void return_free_heap();

// Version, build configuration and, for oneDNN, the library version: for --version and audits.
std::string version_string();
std::string build_info();
// The instruction set oneDNN dispatches to here ("avx2", "avx512_core_amx", ...), or
// "reference" when oneDNN is compiled out.
std::string cpu_isa();

}  // namespace morphokd
