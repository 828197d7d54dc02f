// SHA-256 (FIPS 180-4), self-contained so the static build needs no crypto library.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace morphokd {

std::string sha256_hex(std::span<const std::byte> data);
std::string sha256_file(const std::string& path);  // Error naming the file if unreadable

}  // namespace morphokd
