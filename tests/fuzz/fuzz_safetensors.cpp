// safetensors reader: whatever parses must survive encode -> parse with the same names,
// shapes, metadata and values (F16/BF16 are re-encoded as the F32 they widen to, exactly).
#include <cstring>

#include "fuzz_support.hpp"
#include "morphokd/io/safetensors.hpp"

namespace {
bool same_entry(const morphokd::StEntry& a, const morphokd::StEntry& b) {
  if (a.stored != b.stored || a.shape != b.shape || a.ints != b.ints) return false;
  if (a.stored == morphokd::StDType::i64) return true;  // `values` unused
  if (a.values.numel() != b.values.numel()) return false;
  const auto n = static_cast<std::size_t>(a.values.numel());
  return n == 0 || std::memcmp(a.values.data(), b.values.data(), n * sizeof(float)) == 0;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace morphokd;
  fuzz::expect_accept_or_error("fuzz.safetensors", [&] {
    SafetensorsFile f = parse_safetensors(fuzz::as_bytes(data, size), "fuzz.safetensors");
    for (auto& [name, entry] : f.tensors)
      if (entry.stored != StDType::i64) entry.stored = StDType::f32;
    const SafetensorsFile g = parse_safetensors(encode_safetensors(f), "re-encoded");
    if (f.metadata != g.metadata || f.tensors.size() != g.tensors.size()) fuzz::finding("round trip", "names or metadata differ");
    for (const auto& [name, entry] : f.tensors)
      if (!g.contains(name) || !same_entry(entry, g.tensors.at(name))) fuzz::finding("round trip", "tensor " + name + " differs");
  });
  return 0;
}
