// Shared helpers of the Boost.Test suites: PyTorch fixtures, error checks, backends.
#pragma once
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "morphokd/error.hpp"
#include "morphokd/io/safetensors.hpp"
#include "morphokd/runtime.hpp"
#include "support/oracles.hpp"

namespace morphokd::test {

inline SafetensorsFile fixture(const std::string& name) {
  return read_safetensors(std::string(MORPHOKD_GOLDEN_DIR) + "/" + name + ".safetensors");
}

// rel_error (support/oracles.hpp) after requiring equal shapes.
inline double checked_rel_error(const Tensor& actual, const Tensor& expected) {
  BOOST_REQUIRE(actual.shape() == expected.shape());
  return rel_error(actual, expected);
}

// The call must throw an Error whose message is one line containing every word.
template <class F>
void expect_error(F&& call, std::initializer_list<std::string> words) {
  try {
    call();
    BOOST_ERROR("no error; expected one mentioning '" << *words.begin() << "'");
  } catch (const Error& e) {
    const std::string m = e.what();
    BOOST_TEST(m.find('\n') == std::string::npos, "message spans lines: " << m);
    for (const auto& w : words) BOOST_TEST(m.find(w) != std::string::npos, "message '" << m << "' lacks '" << w << "'");
  }
}
template <class F>
void expect_error(F&& call, const std::string& words) {
  expect_error(std::forward<F>(call), {words});
}

// True when the call throws an Error whose message contains `needle` (else the message is logged).
bool throws_with(auto&& call, const std::string& needle) {
  try {
    call();
  } catch (const Error& e) {
    const bool ok = std::string(e.what()).find(needle) != std::string::npos;
    if (!ok) BOOST_TEST_MESSAGE("message was: " << e.what());
    return ok;
  }
  return false;
}

#define MORPHOKD_CHECK_GOLDEN(actual, file, name, tol)                                                   \
  do {                                                                                                   \
    const double rel_ = ::morphokd::test::checked_rel_error((actual), (file).tensor((name), "fixture"));        \
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
