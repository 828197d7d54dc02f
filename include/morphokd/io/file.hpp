// Whole-file reads and crash-safe writes: a write goes to a temporary file in the same
// directory, is fsynced, renamed over the target, and the directory is fsynced, so a
// reader sees the old file or the new one, never half of one.
#pragma once
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace morphokd {

std::vector<std::byte> read_file(const std::string& path);
void write_file_atomic(const std::string& path, std::span<const std::byte> bytes);
void fsync_directory(const std::string& dir);

// An output directory that appears complete or not at all: filled under
// "{target}.partial-{pid}", renamed to `target` by commit(), removed if never committed.
// Missing parent directories are created. Error: `target` already exists, unless `replace`:
// then commit() swaps the old `target` out and removes it.
class StagedDirectory {
 public:
  explicit StagedDirectory(const std::string& target, bool replace = false);
  ~StagedDirectory();
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;
  const std::filesystem::path& path() const { return staging_; }
  void commit();

 private:
  std::filesystem::path target_, staging_;
  bool replace_, committed_ = false;
};

}  // namespace morphokd
