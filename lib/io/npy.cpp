#include "morphokd/io/npy.hpp"

#include <cctype>
#include <cstring>
#include <limits>
#include <string_view>

#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"

namespace morphokd {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;

std::size_t itemsize(NpyDType t) {
  switch (t) {
    case NpyDType::f32: return 4;
    case NpyDType::f64: return 8;
    case NpyDType::u8: return 1;
    case NpyDType::i64: return 8;
  }
  return 0;
}

// Parser for the header, a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : s_(text), name_(name) {}

  void parse(NpyArray& out) {
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (!peek('}')) {
      const std::string key = string_literal();
      expect(':');
      if (key == "descr" && !have_descr) {
        out.dtype = dtype(string_literal());
        have_descr = true;
      } else if (key == "fortran_order" && !have_order) {
        if (word() != "False") bad("fortran_order must be False (Fortran-ordered arrays are not supported)");
        have_order = true;
      } else if (key == "shape" && !have_shape) {
        out.shape = shape_tuple();
        have_shape = true;
      } else {
        bad("unexpected or repeated header key " + quote(key) + "");
      }
      if (!peek('}')) expect(',');
    }
    expect('}');
    skip_space();
    if (pos_ != s_.size()) bad("trailing characters after the header dict");
    if (!have_descr || !have_order || !have_shape) bad("header lacks descr, fortran_order or shape");
  }

 private:
  std::string_view s_;
  const std::string& name_;
  std::size_t pos_ = 0;

  [[noreturn]] void bad(const std::string& what) { fail(name_ + ": invalid .npy header: " + what); }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n')) ++pos_;
  }
  bool peek(char c) {
    skip_space();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  void expect(char c) {
    if (!peek(c)) bad(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string string_literal() {
    skip_space();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) bad("expected a string");
    const char q = s_[pos_++];
    const std::size_t end = s_.find(q, pos_);
    if (end == std::string_view::npos) bad("unterminated string");
    std::string v(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return v;
  }
  std::string word() {
    skip_space();
    const std::size_t b = pos_;
    while (pos_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    return std::string(s_.substr(b, pos_ - b));
  }
  std::vector<Index> shape_tuple() {
    std::vector<Index> dims;
    expect('(');
    while (!peek(')')) {
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == '-') bad("negative dimension in shape");
      if (pos_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[pos_]))) bad("shape must be a tuple of integers");
      Index v = 0;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        const int d = s_[pos_++] - '0';
        if (v > (std::numeric_limits<Index>::max() - d) / 10) bad("dimension overflows");
        v = v * 10 + d;
      }
      dims.push_back(v);
      if (!peek(')')) expect(',');
    }
    expect(')');
    if (dims.size() > static_cast<std::size_t>(Shape::kMaxRank)) bad("rank above " + std::to_string(Shape::kMaxRank));
    return dims;
  }
  NpyDType dtype(const std::string& d) {
    if (d.size() == 3 && d[0] == '>' && d.substr(1) != "u1") bad("big-endian dtype " + quote(d) + " is not supported");
    if (d == "<f4") return NpyDType::f32;
    if (d == "<f8") return NpyDType::f64;
    if (d == "|u1" || d == "<u1") return NpyDType::u8;
    if (d == "<i8") return NpyDType::i64;
    bad("unsupported dtype " + quote(d) + " (supported: <f4, <f8, |u1, <i8)");
  }
};

std::uint32_t read_le(std::span<const std::byte> b, std::size_t at, std::size_t n) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint32_t>(b[at + i]) << (8 * i);
  return v;
}

}  // namespace

const char* npy_dtype_name(NpyDType t) {
  switch (t) {
    case NpyDType::f32: return "float32";
    case NpyDType::f64: return "float64";
    case NpyDType::u8: return "uint8";
    case NpyDType::i64: return "int64";
  }
  return "?";
}

NpyArray parse_npy(std::span<const std::byte> bytes, const std::string& name) {
  if (bytes.size() < kMagicLen + 2 || std::memcmp(bytes.data(), kMagic, kMagicLen) != 0)
    fail(name + ": not a .npy file (bad magic)");
  const auto major = static_cast<unsigned>(bytes[6]);
  const auto minor = static_cast<unsigned>(bytes[7]);
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    fail(name + ": unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor));
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + len_bytes) fail(name + ": truncated .npy header");
  const std::size_t header_len = read_le(bytes, 8, len_bytes);
  const std::size_t data_at = 8 + len_bytes + header_len;
  if (bytes.size() < data_at) fail(name + ": truncated .npy header");
  std::string_view header(reinterpret_cast<const char*>(bytes.data()) + 8 + len_bytes, header_len);
  if (header.empty() || header.back() != '\n') fail(name + ": invalid .npy header: not terminated by a newline");

  NpyArray out;
  HeaderParser(header, name).parse(out);

  const std::size_t item = itemsize(out.dtype);
  std::size_t count = 1;
  for (Index d : out.shape) {
    if (d != 0 && count > std::numeric_limits<std::size_t>::max() / item / static_cast<std::size_t>(d))
      fail(name + ": shape overflows the addressable size");
    count *= static_cast<std::size_t>(d);
  }
  const std::size_t need = count * item;
  const std::size_t have = bytes.size() - data_at;
  if (have < need)
    fail(name + ": truncated data: " + std::to_string(have) + " of " + std::to_string(need) + " bytes");
  if (have > need) fail(name + ": " + std::to_string(have - need) + " bytes of trailing garbage after the data");
  out.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(data_at), bytes.end());
  return out;
}

NpyArray read_npy_array(const std::string& path) { return parse_npy(read_file(path), path); }

Tensor read_npy(const std::string& path, NpyDType* converted_from) {
  const NpyArray a = read_npy_array(path);
  if (converted_from) *converted_from = a.dtype;
  Tensor t = Tensor::empty(Shape(std::span<const Index>(a.shape)));
  float* out = t.data();
  const std::size_t n = static_cast<std::size_t>(t.numel());
  switch (a.dtype) {
    case NpyDType::f32:
      if (n) std::memcpy(out, a.data.data(), n * 4);  // empty array: no valid pointers
      break;
    case NpyDType::f64:
      for (std::size_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, a.data.data() + 8 * i, 8);
        out[i] = static_cast<float>(v);
      }
      break;
    case NpyDType::u8:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(static_cast<std::uint8_t>(a.data[i]));
      break;
    case NpyDType::i64:
      fail(path + ": int64 array where floating-point or uint8 values were expected");
  }
  return t;
}

std::vector<std::byte> encode_npy(const Tensor& t) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < t.rank(); ++i) header += std::to_string(t.dim(i)) + (t.rank() == 1 || i + 1 < t.rank() ? ", " : "");
  if (t.rank() == 1) header.pop_back();
  header += "), }";
  // Pad with spaces so the data starts on a 64-byte boundary, as NumPy does.
  const std::size_t total = ((10 + header.size() + 1 + 63) / 64) * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header.push_back('\n');
  if (header.size() > 65535) fail("npy header too long for format 1.0");
  std::vector<std::byte> out(10 + header.size() + static_cast<std::size_t>(t.numel()) * 4);
  std::memcpy(out.data(), kMagic, kMagicLen);
  out[6] = std::byte{1};
  out[7] = std::byte{0};
  out[8] = static_cast<std::byte>(header.size() & 0xff);
  out[9] = static_cast<std::byte>(header.size() >> 8);
  std::memcpy(out.data() + 10, header.data(), header.size());
  const Tensor c = t.is_contiguous() ? t : t.clone();
  if (t.numel() > 0) std::memcpy(out.data() + 10 + header.size(), c.data(), static_cast<std::size_t>(t.numel()) * 4);
  return out;
}

void write_npy(const std::string& path, const Tensor& t) { write_file_atomic(path, encode_npy(t)); }

}  // namespace morphokd
