#include "morphokd/io/safetensors.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/sha256.hpp"

namespace morphokd {

namespace {

using json = nlohmann::json;

std::size_t itemsize(StDType t) {
  switch (t) {
    case StDType::f32: return 4;
    case StDType::f16: return 2;
    case StDType::bf16: return 2;
    case StDType::i64: return 8;
  }
  return 0;
}

const char* dtype_tag(StDType t) {
  switch (t) {
    case StDType::f32: return "F32";
    case StDType::f16: return "F16";
    case StDType::bf16: return "BF16";
    case StDType::i64: return "I64";
  }
  return "?";
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal
  } else if (exp == 31) {
    v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

float bf16_to_float(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

struct Span {
  std::string name;
  std::uint64_t begin, end;
};

StEntry decode_entry(const std::string& file, const std::string& key, const json& spec,
                     std::span<const std::byte> data, std::vector<Span>& spans) {
  auto bad = [&](const std::string& what) { fail(file + ": tensor " + quote(key) + ": " + what); };
  if (!spec.is_object() || spec.size() != 3 || !spec.contains("dtype") || !spec.contains("shape") ||
      !spec.contains("data_offsets"))
    bad("entry must have exactly dtype, shape and data_offsets");
  const json& dt = spec["dtype"];
  if (!dt.is_string()) bad("dtype is not a string");
  StEntry e;
  const std::string tag = dt.get<std::string>();
  if (tag == "F32") e.stored = StDType::f32;
  else if (tag == "F16") e.stored = StDType::f16;
  else if (tag == "BF16") e.stored = StDType::bf16;
  else if (tag == "I64") e.stored = StDType::i64;
  else bad("unsupported dtype " + quote(tag) + " (supported: F32, F16, BF16, I64)");

  const json& shape = spec["shape"];
  if (!shape.is_array() || shape.size() > static_cast<std::size_t>(Shape::kMaxRank)) bad("shape must be an array of rank <= 6");
  std::uint64_t count = 1;
  for (const json& d : shape) {
    if (!d.is_number_unsigned()) bad("shape entries must be non-negative integers");
    const std::uint64_t v = d.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<Index>::max()) ||
        (v != 0 && count > std::numeric_limits<std::uint64_t>::max() / 8 / v))
      bad("shape overflows");
    count *= v;
    e.shape.push_back(static_cast<Index>(v));
  }
  const json& off = spec["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    bad("data_offsets must be two non-negative integers");
  const std::uint64_t begin = off[0].get<std::uint64_t>(), end = off[1].get<std::uint64_t>();
  if (begin > end || end > data.size()) bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                            ") outside the " + std::to_string(data.size()) + "-byte data section");
  if (end - begin != count * itemsize(e.stored)) bad("data_offsets length does not match dtype and shape");
  spans.push_back({key, begin, end});

  const std::byte* p = data.data() + begin;
  if (e.stored == StDType::i64) {
    e.ints.resize(count);
    if (count) std::memcpy(e.ints.data(), p, count * 8);  // an empty vector has no valid pointer
    return e;
  }
  e.values = Tensor::empty(Shape(std::span<const Index>(e.shape)));
  float* out = e.values.data();
  for (std::uint64_t i = 0; i < count; ++i) {
    if (e.stored == StDType::f32) {
      std::memcpy(out + i, p + 4 * i, 4);
    } else {
      std::uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = e.stored == StDType::f16 ? half_to_float(h) : bf16_to_float(h);
    }
  }
  return e;
}

}  // namespace

const Tensor& SafetensorsFile::tensor(const std::string& name, const std::string& source) const {
  const auto it = tensors.find(name);
  if (it == tensors.end()) fail(source + ": missing tensor " + quote(name) + "");
  if (it->second.stored == StDType::i64) fail(source + ": tensor " + quote(name) + " is I64, expected a float dtype");
  return it->second.values;
}

SafetensorsFile parse_safetensors(std::span<const std::byte> bytes, const std::string& name) {
  if (bytes.size() < 8) fail(name + ": not a safetensors file (shorter than its 8-byte header length)");
  std::uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<std::uint64_t>(bytes[static_cast<std::size_t>(i)]) << (8 * i);
  if (header_len > kSafetensorsMaxHeader) fail(name + ": safetensors header of " + std::to_string(header_len) + " bytes exceeds the 100 MiB cap");
  if (header_len > bytes.size() - 8) fail(name + ": truncated safetensors header");
  const auto* h = reinterpret_cast<const char*>(bytes.data() + 8);
  json header = json::parse(h, h + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) fail(name + ": safetensors header is not valid JSON");
  if (!header.is_object()) fail(name + ": safetensors header is not a JSON object");

  const std::span<const std::byte> data = bytes.subspan(8 + header_len);
  SafetensorsFile out;
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) fail(name + ": __metadata__ is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string()) fail(name + ": __metadata__ value of " + quote(m.key()) + " is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    out.tensors[it.key()] = decode_entry(name, it.key(), it.value(), data, spans);
  }
  // The tensors must tile the data section exactly: no overlap, no gap, nothing after.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  std::uint64_t at = 0;
  for (const Span& s : spans) {
    if (s.begin < at) fail(name + ": tensor " + quote(s.name) + " overlaps another tensor's data");
    if (s.begin > at) fail(name + ": gap in the data section before tensor " + quote(s.name) + "");
    at = s.end;
  }
  if (at != data.size()) fail(name + ": " + std::to_string(data.size() - at) + " bytes of trailing data not owned by any tensor");
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) { return parse_safetensors(read_file(path), path); }

std::vector<std::byte> encode_safetensors(const SafetensorsFile& file) {
  json header = json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::uint64_t at = 0;
  for (const auto& [name, e] : file.tensors) {
    check(e.stored == StDType::f32 || e.stored == StDType::i64, "safetensors writer: tensor " + quote(name) + " must be F32 or I64");
    std::uint64_t count = 1;
    for (Index d : e.shape) count *= static_cast<std::uint64_t>(d);
    const bool ints = e.stored == StDType::i64;
    check(ints ? e.ints.size() == count : e.values.numel() == static_cast<Index>(count),
          "safetensors writer: tensor " + quote(name) + " has data that does not match its shape");
    const std::uint64_t len = count * itemsize(e.stored);
    header[name] = {{"dtype", dtype_tag(e.stored)}, {"shape", e.shape}, {"data_offsets", {at, at + len}}};
    at += len;
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');  // data section 8-byte aligned
  std::vector<std::byte> out(8 + text.size() + at);
  const std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  std::memcpy(out.data() + 8, text.data(), text.size());
  std::byte* p = out.data() + 8 + text.size();
  for (const auto& [name, e] : file.tensors) {
    // memcpy needs valid pointers even for 0 bytes, and an empty vector or tensor has none.
    if (e.stored == StDType::i64) {
      if (!e.ints.empty()) std::memcpy(p, e.ints.data(), e.ints.size() * 8);
      p += e.ints.size() * 8;
    } else {
      const Tensor c = e.values.is_contiguous() ? e.values : e.values.clone();
      if (c.numel() > 0) std::memcpy(p, c.data(), static_cast<std::size_t>(c.numel()) * 4);
      p += c.numel() * 4;
    }
  }
  return out;
}

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  write_file_atomic(path, encode_safetensors(file));
}

namespace {
std::string content_sha256(SafetensorsFile file) {
  file.metadata.erase(kSealKey);
  return sha256_hex(encode_safetensors(file));
}
}  // namespace

void seal(SafetensorsFile& file) { file.metadata[kSealKey] = content_sha256(file); }

void check_seal(const SafetensorsFile& file, const std::string& name) {
  const auto it = file.metadata.find(kSealKey);
  if (it == file.metadata.end()) fail(name + ": no " + kSealKey + " in its metadata (not a sealed file)");
  if (content_sha256(file) != it->second) fail(name + ": content does not match its " + kSealKey + " (file corrupt)");
}

}  // namespace morphokd
