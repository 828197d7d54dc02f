// Whole-file reads and crash-safe writes: a write goes to a temporary file in the same
// directory, is fsynced, renamed over the target, and the directory is fsynced, so a
// reader sees the old file or the new one, never half of one.
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace morphokd {

std::vector<std::byte> read_file(const std::string& path);
void write_file_atomic(const std::string& path, std::span<const std::byte> bytes);
void fsync_directory(const std::string& dir);

}  // namespace morphokd
