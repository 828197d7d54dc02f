// One exception type for every user-facing failure: the message is a single line that
// names the file or option and the problem, so the CLI can print it and exit non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace morphokd {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& message) { throw Error(message); }

inline void check(bool ok, const std::string& message) {
  if (!ok) fail(message);
}

}  // namespace morphokd
