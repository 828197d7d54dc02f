// One exception type for every user-facing failure: the message is a single line that
// names the file or option and the problem, so the CLI can print it and exit non-zero.
#pragma once
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

namespace morphokd {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& message) { throw Error(message); }

// Text from a file or the command line as it may appear in a one-line message: in single
// quotes, bytes outside printable ASCII as \xNN, cut after `max` characters.
inline std::string quote(std::string_view text, std::size_t max = 80) {
  std::string out = "'";
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i == max) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out + "'";
}

inline void check(bool ok, const std::string& message) {
  if (!ok) fail(message);
}

}  // namespace morphokd
