// The property every fuzzed parser must keep: it accepts an input or refuses it with a
// one-line morphokd::Error that starts with the input's name. Anything else (another
// exception, a crash, a sanitizer report) is a finding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "morphokd/error.hpp"

namespace morphokd::fuzz {

inline std::span<const std::byte> as_bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

[[noreturn]] inline void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "FINDING: %s: %s\n", what, detail.c_str());
  std::abort();
}

template <typename Parse>
void expect_accept_or_error(const std::string& name, Parse&& parse) {
  try {
    parse();
  } catch (const Error& e) {
    const std::string_view m = e.what();
    if (!m.starts_with(name) || m.find('\n') != std::string_view::npos) finding("error message not one line naming the input", e.what());
  }
}

}  // namespace morphokd::fuzz
