// safetensors (the format PyTorch users share weights in): 8-byte little-endian header
// length, JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
// then the data. The reader validates everything before use: header size cap, JSON
// shape, dtypes, offsets inside the buffer, no overlaps or gaps, no trailing bytes.
// F32 is read and written; F16 and BF16 are read (widened to float32); I64 is read and
// written for integer buffers such as BatchNorm's num_batches_tracked.
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "morphokd/tensor.hpp"

namespace morphokd {

enum class StDType { f32, f16, bf16, i64 };

struct StEntry {
  StDType stored = StDType::f32;  // dtype in the file
  Tensor values;                  // float kinds, widened to float32
  std::vector<std::int64_t> ints; // I64
  std::vector<Index> shape;
};

struct SafetensorsFile {
  std::map<std::string, StEntry> tensors;
  std::map<std::string, std::string> metadata;

  bool contains(const std::string& name) const { return tensors.count(name) != 0; }
  // A float tensor by name; Error naming `source` if missing or not a float dtype.
  const Tensor& tensor(const std::string& name, const std::string& source) const;
};

constexpr std::uint64_t kSafetensorsMaxHeader = 100u * 1024u * 1024u;

SafetensorsFile parse_safetensors(std::span<const std::byte> bytes, const std::string& name);
SafetensorsFile read_safetensors(const std::string& path);

// Writes F32 for float entries and I64 for `ints` entries (by `stored`), in name order.
std::vector<std::byte> encode_safetensors(const SafetensorsFile& file);
void write_safetensors(const std::string& path, const SafetensorsFile& file);

// A file's own checksum (checkpoints): metadata "content_sha256" is the SHA-256 of the file
// encoded without that entry. check_seal fails naming `name` when it is missing or differs.
constexpr const char* kSealKey = "content_sha256";
void seal(SafetensorsFile& file);
void check_seal(const SafetensorsFile& file, const std::string& name);

}  // namespace morphokd
