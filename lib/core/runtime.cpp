#include "morphokd/runtime.hpp"

#include <omp.h>

#include <cstdlib>
#include <sstream>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "morphokd/error.hpp"
#include "morphokd_build_config.hpp"

#include <zlib.h>

#include <Eigen/Core>

#if MORPHOKD_HAS_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif
#if MORPHOKD_HAS_OPENCV
#include <opencv2/core/version.hpp>
#endif

namespace morphokd {

namespace {
Backend initial_backend() {
  if (const char* env = std::getenv("MORPHOKD_BACKEND"); env != nullptr && *env != '\0') {
    try {
      return parse_backend(env);
    } catch (const Error& e) {
      fail(std::string("MORPHOKD_BACKEND: ") + e.what());
    }
  }
  return backend_available(Backend::onednn) ? Backend::onednn : Backend::reference;
}

Backend& backend_slot() {
  static Backend b = initial_backend();
  return b;
}

bool& deterministic_slot() {
  static bool on = true;
  return on;
}
}  // namespace

std::string_view backend_name(Backend b) { return b == Backend::onednn ? "onednn" : "reference"; }

bool backend_available(Backend b) { return b == Backend::reference || MORPHOKD_HAS_ONEDNN; }

Backend parse_backend(std::string_view name) {
  Backend b;
  if (name == "reference") {
    b = Backend::reference;
  } else if (name == "onednn") {
    b = Backend::onednn;
  } else {
    fail("unknown backend " + quote(std::string(name)) + " (expected onednn or reference)");
  }
  if (!backend_available(b)) fail("backend onednn is not compiled into this build (MORPHOKD_WITH_ONEDNN=OFF)");
  return b;
}

Backend current_backend() { return backend_slot(); }

void set_backend(Backend b) {
  check(backend_available(b), "backend onednn is not compiled into this build (MORPHOKD_WITH_ONEDNN=OFF)");
  backend_slot() = b;
}

void set_num_threads(int n) {
  check(n >= 1, "thread count must be at least 1, got " + std::to_string(n));
  omp_set_num_threads(n);  // oneDNN's OpenMP runtime reads the same setting
}

int num_threads() { return omp_get_max_threads(); }

void set_deterministic(bool on) { deterministic_slot() = on; }
bool deterministic() { return deterministic_slot(); }

void return_free_heap() {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

std::string version_string() { return MORPHOKD_VERSION; }

std::string build_info() {
  std::ostringstream s;
  s << "morphokd " << MORPHOKD_VERSION << " (" << MORPHOKD_GIT_ID << ")";
#if MORPHOKD_HAS_ONEDNN
  const dnnl_version_t* v = dnnl_version();
  s << "; backends: reference, onednn " << v->major << '.' << v->minor << '.' << v->patch;
#else
  s << "; backends: reference (oneDNN compiled out)";
#endif
#if MORPHOKD_HAS_OPENCV
  s << "; opencv " << CV_VERSION;
#else
  s << "; opencv: compiled out";
#endif
  s << "; eigen " << EIGEN_WORLD_VERSION << '.' << EIGEN_MAJOR_VERSION << '.' << EIGEN_MINOR_VERSION;
  s << "; zlib " << ZLIB_VERSION << "; openmp " << _OPENMP;
  s << "; compiler: " << MORPHOKD_COMPILER;
  return s.str();
}

std::string_view precision_name(Precision p) {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::fp32_winograd: return "fp32-winograd";
    case Precision::bf16: return "bf16";
  }
  return "";
}

Precision parse_precision(std::string_view name) {
  for (Precision p : kPrecisions)
    if (name == precision_name(p)) return p;
  std::string names;
  for (std::size_t i = 0; i < std::size(kPrecisions); ++i)
    names += (i == 0 ? "" : i + 1 < std::size(kPrecisions) ? ", " : " or ") + std::string(precision_name(kPrecisions[i]));
  fail("unknown precision " + quote(std::string(name)) + " (expected " + names + ")");
}

bool precision_hardware(Precision p) {
  const std::string isa = cpu_isa();
  switch (p) {
    case Precision::fp32: return true;
    case Precision::fp32_winograd: return isa.starts_with("avx512_core");  // oneDNN 2.6's Winograd kernel
    case Precision::bf16: return isa == "avx512_core_bf16" || isa == "avx512_core_amx";
  }
  return false;
}

void check_precision_hardware(Precision p) {
  if (precision_hardware(p)) return;
  const char* needs = p == Precision::bf16 ? "AVX512-BF16 or AMX" : "AVX-512";
  fail("precision " + std::string(precision_name(p)) + " needs a CPU with " + needs + "; this one dispatches " + cpu_isa() +
       " (use fp32" + (p == Precision::bf16 ? ", or the reference backend's bf16 emulation)" : ")"));
}

std::string cpu_isa() {
#if MORPHOKD_HAS_ONEDNN
  using isa = dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case isa::sse41: return "sse41";
    case isa::avx: return "avx";
    case isa::avx2: return "avx2";
    case isa::avx2_vnni: return "avx2_vnni";
    case isa::avx512_core: return "avx512_core";
    case isa::avx512_core_vnni: return "avx512_core_vnni";
    case isa::avx512_core_bf16: return "avx512_core_bf16";
    case isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
#else
  return "reference";
#endif
}

}  // namespace morphokd
