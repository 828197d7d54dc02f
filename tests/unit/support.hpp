// Shared helpers for tests that compare against the committed PyTorch fixtures.
#pragma once
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "morphokd/io/safetensors.hpp"
#include "morphokd/runtime.hpp"

namespace morphokd::test {

inline SafetensorsFile fixture(const std::string& name) {
  return read_safetensors(std::string(MORPHOKD_GOLDEN_DIR) + "/" + name + ".safetensors");
}

// max |actual - expected| / max |expected|: the error measure every golden test states.
inline double rel_error(const Tensor& actual, const Tensor& expected) {
  BOOST_REQUIRE(actual.shape() == expected.shape());
  double err = 0, scale = 0;
  for (Index i = 0; i < expected.numel(); ++i) {
    err = std::max(err, std::fabs(double(actual.data()[i]) - expected.data()[i]));
    scale = std::max(scale, std::fabs(double(expected.data()[i])));
  }
  return scale > 0 ? err / scale : err;
}

#define MORPHOKD_CHECK_GOLDEN(actual, file, name, tol)                                                   \
  do {                                                                                                   \
    const double rel_ = ::morphokd::test::rel_error((actual), (file).tensor((name), "fixture"));        \
    BOOST_TEST(rel_ <= (tol), (name) << ": rel error " << rel_ << " > " << (tol));                      \
  } while (0)

inline std::vector<Backend> available_backends() {
  std::vector<Backend> b{Backend::reference};
  if (backend_available(Backend::onednn)) b.push_back(Backend::onednn);
  return b;
}

}  // namespace morphokd::test

namespace morphokd {
inline std::ostream& operator<<(std::ostream& os, Backend b) { return os << backend_name(b); }
}  // namespace morphokd
