// Tensor basics and the strict readers: one negative test per rejection rule of .npy and
// safetensors, each checking that the error names the file and the rule.
#define BOOST_TEST_MODULE tensor_io
#include <bit>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sys/mman.h>
#include <unistd.h>

#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/io/npy.hpp"
#include "morphokd/io/safetensors.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/packed_rows.hpp"
#include "core/packed_rows_unpack.hpp"
#include "support.hpp"

using namespace morphokd;
namespace fs = std::filesystem;

namespace {
std::vector<std::byte> bytes(const std::string& s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};  // not memcpy: an empty string's data() may not be passed to it
}

// A version-1.0 .npy with the given header dict and `data_bytes` zero bytes of data.
std::vector<std::byte> npy(const std::string& dict, std::size_t data_bytes, unsigned major = 1) {
  std::string header = dict + "\n";
  std::string out = std::string("\x93NUMPY", 6) + char(major) + char(0);
  if (major == 1) {
    out += char(header.size() & 0xff);
    out += char(header.size() >> 8);
  } else {
    for (int i = 0; i < 4; ++i) out += char((header.size() >> (8 * i)) & 0xff);
  }
  out += header + std::string(data_bytes, '\0');
  return bytes(out);
}

const std::string kF32_2x3 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

// The call must throw a one-line Error naming the file ("case.file") and containing `words`.
template <class F>
void expect_error(F&& call, const std::string& words) {
  test::expect_error(std::forward<F>(call), {"case.file", words});
}
void npy_rejects(const std::vector<std::byte>& b, const std::string& words) {
  expect_error([&] { parse_npy(b, "case.file"); }, words);
}

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("morphokd-test-" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}
}  // namespace

BOOST_AUTO_TEST_CASE(tensor_views_share_storage) {
  Tensor t = Tensor::zeros({4, 3});
  Tensor s = t.slice(1, 3);
  s.fill(2.0f);
  BOOST_TEST(t.data()[2] == 0.0f);
  BOOST_TEST(t.data()[3] == 2.0f);
  BOOST_TEST(t.data()[8] == 2.0f);
  BOOST_TEST(t.data()[9] == 0.0f);
  Tensor r = t.reshape({2, 6});
  BOOST_TEST(r.data() == t.data());
  BOOST_TEST(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0u);
  BOOST_CHECK_THROW(t.reshape({5}), Error);
  BOOST_CHECK_THROW(t.slice(2, 5), Error);
  BOOST_TEST(find_non_finite(t.span()) == -1);
  t.data()[7] = NAN;
  BOOST_TEST(find_non_finite(t.span()) == 7);
}

BOOST_AUTO_TEST_CASE(tensor_add_from_adds_elementwise) {
  Tensor a = Tensor::empty({2, 3}), b = Tensor::empty({2, 3});
  for (Index i = 0; i < 6; ++i) a.data()[i] = static_cast<float>(i), b.data()[i] = 0.5f - static_cast<float>(10 * i);
  a.add_from(b);
  for (Index i = 0; i < 6; ++i) BOOST_TEST(a.data()[i] == 0.5f - static_cast<float>(9 * i));  // exact: small integers and halves
  BOOST_TEST(b.data()[5] == -49.5f);  // the addend is left alone
  BOOST_CHECK_THROW(a.add_from(Tensor::zeros({3, 2})), Error);
}

// Rows packed without their zeros come back bit for bit, in any order: rows all zero, all
// nonzero, -0.0, a denormal and a NaN payload, a row length that is not a multiple of 64.
BOOST_AUTO_TEST_CASE(packed_rows_give_back_every_bit) {
  const Index n = 5, per = 3 * 7 * 7;  // 147 values: two full mask words and part of a third
  Tensor t = Tensor::empty({n, 3, 7, 7});
  for (Index i = 0; i < t.numel(); ++i) t.data()[i] = (i * 7919) % 3 == 0 ? 0.0f : static_cast<float>(i % 97) - 40.0f;
  std::fill_n(t.data() + 1 * per, per, 0.0f);  // row 1: all zeros
  for (Index j = 0; j < per; ++j) t.data()[2 * per + j] = 1.0f + static_cast<float>(j);  // row 2: none
  t.data()[3 * per + 5] = -0.0f;
  t.data()[3 * per + 63] = std::numeric_limits<float>::denorm_min();
  t.data()[3 * per + 64] = std::bit_cast<float>(0x7fc01234u);
  t.data()[4 * per + per - 1] = 3.5f;  // the last value of the last row
  const PackedRows packed(t);
  BOOST_TEST(packed.shape() == t.shape());
  BOOST_TEST(packed.row_size() == per);
  std::vector<float> out(static_cast<std::size_t>(per));
  for (Index r : {4, 0, 3, 1, 2}) {
    std::fill(out.begin(), out.end(), 9.0f);  // no stale value may survive
    packed.unpack(r, out.data());
    BOOST_TEST(std::memcmp(out.data(), t.data() + r * per, sizeof(float) * out.size()) == 0, "row " << r);
  }
  Index zeros = 0;
  for (Index i = 0; i < t.numel(); ++i) zeros += std::bit_cast<std::uint32_t>(t.data()[i]) == 0;
  // Held: a bit per value, the row starts, the values other than +0.0 and one spare.
  const std::size_t held = static_cast<std::size_t>(n * 3) * 8 + static_cast<std::size_t>(n + 1) * sizeof(std::size_t) +
                           static_cast<std::size_t>(t.numel() - zeros + 1) * 4;
  BOOST_TEST(packed.bytes() == held);
  BOOST_TEST(packed.bytes() < static_cast<std::size_t>(t.numel()) * 4 * 3 / 4);
  Tensor range;  // rows [1, 4) at once, into a tensor made for them
  packed.unpack(1, 4, range);
  BOOST_TEST(range.shape() == t.shape().with_batch(3));
  BOOST_TEST(std::memcmp(range.data(), t.data() + per, sizeof(float) * static_cast<std::size_t>(3 * per)) == 0);
  const PackedRows copy = packed;  // a handle: the packed data is shared, not copied
  BOOST_TEST(copy.shares(packed));
  BOOST_TEST(!PackedRows(t).shares(packed));
  BOOST_CHECK_THROW(packed.unpack(n, out.data()), Error);
  BOOST_CHECK_THROW(packed.unpack(3, n + 1, range), Error);
  // Packed a batch at a time (2, 0, then 3 rows): the same rows, held in the same bytes.
  PackedRows::Builder builder(t.shape());
  for (auto [b, e] : {std::pair<Index, Index>{0, 2}, {2, 2}, {2, n}}) builder.add(t.slice(b, e));
  const PackedRows batched = builder.finish();
  BOOST_TEST(batched.bytes() == held);
  Tensor all;
  batched.unpack(0, n, all);
  BOOST_TEST(std::memcmp(all.data(), t.data(), sizeof(float) * static_cast<std::size_t>(t.numel())) == 0);
  PackedRows::Builder short_of_rows(t.shape());
  short_of_rows.add(t.slice(0, 2));
  BOOST_CHECK_THROW(short_of_rows.add(Tensor::zeros({2, 3, 64})), Error);  // another row shape
  BOOST_CHECK_THROW(short_of_rows.add(t), Error);                          // past the last row
  BOOST_CHECK_THROW(short_of_rows.finish(), Error);                        // rows missing
}

// The AVX-512 row unpacking gives the portable one's bits for masks of every density, and its
// expand-loads read no value past the row's last: here the values end where a page that may
// not be read begins. (Rows whose length is not a multiple of 16 end in the portable loop,
// which may read the one spare value PackedRows keeps: the test above.)
BOOST_AUTO_TEST_CASE(packed_row_unpacking_simd_matches_portable) {
  if (!detail::cpu_has_avx512()) return;  // the portable path is the only one on this CPU
  const Index n = 1008;  // 63 groups of 16; the last mask word is part full
  std::vector<std::uint64_t> mask(static_cast<std::size_t>((n + 63) / 64));
  std::uint64_t x = 88172645463325252ull;  // xorshift: words dense, sparse, empty and full
  for (std::size_t w = 0; w < mask.size(); ++w) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    mask[w] = w % 4 == 0 ? ~std::uint64_t{0} : w % 4 == 1 ? x : w % 4 == 2 ? 0 : x & (x >> 1) & (x >> 2);
  }
  // The last word (w = 15) sparse: a read of 16 values from its last stored ones would overrun.
  mask.back() &= (std::uint64_t{1} << (n % 64)) - 1;  // no bits past the row
  std::size_t stored = 0;
  for (std::uint64_t w : mask) stored += static_cast<std::size_t>(std::popcount(w));
  std::vector<float> spare(stored + 1, 0.0f);  // as PackedRows holds them
  for (std::size_t i = 0; i < stored; ++i) spare[i] = i % 5 == 0 ? -0.0f : static_cast<float>(i) + 0.25f;
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t room = (stored * sizeof(float) + page - 1) / page * page;
  void* map = ::mmap(nullptr, room + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  BOOST_REQUIRE(map != MAP_FAILED);
  BOOST_REQUIRE(::mprotect(static_cast<char*>(map) + room, page, PROT_NONE) == 0);
  float* guarded = reinterpret_cast<float*>(static_cast<char*>(map) + room) - stored;
  std::memcpy(guarded, spare.data(), stored * sizeof(float));
  std::vector<float> portable(static_cast<std::size_t>(n), 9.0f), simd(static_cast<std::size_t>(n), 7.0f);
  detail::unpack_row_portable(mask.data(), spare.data(), n, portable.data());
  detail::unpack_row_avx512(mask.data(), guarded, n, simd.data());
  ::munmap(map, room + page);
  BOOST_TEST(std::count_if(portable.begin(), portable.end(), [](float v) { return std::bit_cast<std::uint32_t>(v) != 0; }) ==
             static_cast<long>(stored));  // -0.0 too: only +0.0 is left out
  BOOST_TEST(std::memcmp(portable.data(), simd.data(), sizeof(float) * portable.size()) == 0);
}

BOOST_AUTO_TEST_CASE(npy_round_trip_and_conversions) {
  const fs::path dir = temp_dir();
  Tensor t = Tensor::empty({2, 3, 4});
  for (Index i = 0; i < t.numel(); ++i) t.data()[i] = 0.5f * static_cast<float>(i) - 3.0f;
  write_npy((dir / "a.npy").string(), t);
  NpyDType stored{};
  const Tensor back = read_npy((dir / "a.npy").string(), &stored);
  BOOST_TEST((stored == NpyDType::f32));
  BOOST_TEST(back.shape() == t.shape());
  BOOST_TEST(std::memcmp(back.data(), t.data(), 4 * 24) == 0);
  // 1-D and 0-D shapes round-trip too.
  write_npy((dir / "b.npy").string(), Tensor::full({5}, 1.5f));
  BOOST_TEST(read_npy((dir / "b.npy").string()).shape() == Shape({5}));
  write_npy((dir / "c.npy").string(), Tensor::full(Shape{}, 2.0f));
  BOOST_TEST(read_npy((dir / "c.npy").string()).data()[0] == 2.0f);
  // uint8 and float64 are converted, values unchanged; version 2.0 headers accepted.
  auto u8 = npy("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", 0, 2);
  u8.push_back(std::byte{0});
  u8.push_back(std::byte{128});
  u8.push_back(std::byte{255});
  const NpyArray a = parse_npy(u8, "u8");
  BOOST_TEST(a.shape == std::vector<Index>{3});
  write_file_atomic((dir / "u8.npy").string(), u8);
  const Tensor tu = read_npy((dir / "u8.npy").string(), &stored);
  BOOST_TEST((stored == NpyDType::u8));
  BOOST_TEST(tu.data()[1] == 128.0f);
  BOOST_TEST(tu.data()[2] == 255.0f);
  auto f64 = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", 0);
  const double v = -0.25;
  const auto* vb = reinterpret_cast<const std::byte*>(&v);
  f64.insert(f64.end(), vb, vb + 8);
  write_file_atomic((dir / "f64.npy").string(), f64);
  BOOST_TEST(read_npy((dir / "f64.npy").string(), &stored).data()[0] == -0.25f);
  BOOST_TEST((stored == NpyDType::f64));
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(npy_accepts_valid) { BOOST_TEST(parse_npy(npy(kF32_2x3, 24), "ok").data.size() == 24u); }
BOOST_AUTO_TEST_CASE(npy_rejects_bad_magic) {
  auto b = npy(kF32_2x3, 24);
  b[1] = std::byte{'X'};
  npy_rejects(b, "bad magic");
}
BOOST_AUTO_TEST_CASE(npy_rejects_unsupported_version) { npy_rejects(npy(kF32_2x3, 24, 4), "unsupported .npy format version 4.0"); }
BOOST_AUTO_TEST_CASE(npy_rejects_truncated_header) {
  auto b = npy(kF32_2x3, 0);
  b.resize(20);
  npy_rejects(b, "truncated .npy header");
}
BOOST_AUTO_TEST_CASE(npy_rejects_header_without_newline) {
  auto b = npy(kF32_2x3, 24);
  b[10 + kF32_2x3.size()] = std::byte{' '};
  npy_rejects(b, "not terminated by a newline");
}
BOOST_AUTO_TEST_CASE(npy_rejects_malformed_dict) { npy_rejects(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", 24), "invalid .npy header"); }
BOOST_AUTO_TEST_CASE(npy_rejects_missing_key) { npy_rejects(npy("{'descr': '<f4', 'shape': (2, 3), }", 24), "lacks descr, fortran_order or shape"); }
BOOST_AUTO_TEST_CASE(npy_rejects_unknown_key) { npy_rejects(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8), "unexpected or repeated header key 'x'"); }
BOOST_AUTO_TEST_CASE(npy_rejects_big_endian) { npy_rejects(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24), "big-endian"); }
BOOST_AUTO_TEST_CASE(npy_rejects_unsupported_dtype) { npy_rejects(npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }", 48), "unsupported dtype '<c8'"); }
BOOST_AUTO_TEST_CASE(npy_rejects_fortran_order) { npy_rejects(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24), "fortran_order must be False"); }
BOOST_AUTO_TEST_CASE(npy_rejects_negative_shape) { npy_rejects(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }", 24), "negative dimension"); }
BOOST_AUTO_TEST_CASE(npy_rejects_overflowing_dimension) { npy_rejects(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0), "dimension overflows"); }
BOOST_AUTO_TEST_CASE(npy_rejects_overflowing_shape) { npy_rejects(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0), "shape overflows"); }
BOOST_AUTO_TEST_CASE(npy_rejects_truncated_data) { npy_rejects(npy(kF32_2x3, 23), "truncated data: 23 of 24 bytes"); }
BOOST_AUTO_TEST_CASE(npy_rejects_trailing_garbage) { npy_rejects(npy(kF32_2x3, 25), "1 bytes of trailing garbage"); }
BOOST_AUTO_TEST_CASE(npy_int64_is_not_an_image) {
  const fs::path dir = temp_dir();
  const std::string p = (dir / "case.file.npy").string();
  write_file_atomic(p, npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", 8));
  expect_error([&] { read_npy(p); }, "int64 array");
  fs::remove_all(dir);
}
BOOST_AUTO_TEST_CASE(missing_file_is_named) {
  expect_error([] { read_file("/nonexistent/case.file"); }, "cannot open");
}

namespace {
// safetensors bytes from a header text and a data section of `data` bytes (value 0).
std::vector<std::byte> st(const std::string& header, std::size_t data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = char((header.size() >> (8 * i)) & 0xff);
  return bytes(out + header + std::string(data, '\0'));
}
void st_rejects(const std::vector<std::byte>& b, const std::string& words) {
  expect_error([&] { parse_safetensors(b, "case.file"); }, words);
}
const std::string kOne = R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
}  // namespace

BOOST_AUTO_TEST_CASE(safetensors_round_trip) {
  SafetensorsFile f;
  Tensor w = Tensor::empty({2, 3});
  for (Index i = 0; i < 6; ++i) w.data()[i] = static_cast<float>(i) - 2.5f;
  f.tensors["layer.weight"] = {StDType::f32, w, {}, {2, 3}};
  f.tensors["layer.num_batches_tracked"] = {StDType::i64, {}, {42}, {}};
  f.metadata["format"] = "pt";
  const auto enc = encode_safetensors(f);
  std::uint64_t hlen;
  std::memcpy(&hlen, enc.data(), 8);
  BOOST_TEST((8 + hlen) % 8 == 0u);  // data section aligned
  const SafetensorsFile g = parse_safetensors(enc, "rt");
  BOOST_TEST(g.metadata.at("format") == "pt");
  BOOST_TEST(std::memcmp(g.tensor("layer.weight", "rt").data(), w.data(), 24) == 0);
  BOOST_TEST(g.tensors.at("layer.num_batches_tracked").ints.at(0) == 42);
  BOOST_TEST(g.tensors.at("layer.num_batches_tracked").shape.empty());
  BOOST_CHECK_THROW(g.tensor("absent", "rt"), Error);
  BOOST_CHECK_THROW(g.tensor("layer.num_batches_tracked", "rt"), Error);
}

BOOST_AUTO_TEST_CASE(safetensors_reads_f16_and_bf16) {
  // F16: 1.0 = 0x3C00, -2.5 = 0xC100, smallest subnormal 0x0001 = 2^-24; BF16: 1.0 = 0x3F80, -3.0 = 0xC040.
  auto b = st(R"({"h": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]}, "b": {"dtype": "BF16", "shape": [2], "data_offsets": [6, 10]}})", 0);
  for (int v : {0x00, 0x3C, 0x00, 0xC1, 0x01, 0x00, 0x80, 0x3F, 0x40, 0xC0}) b.push_back(static_cast<std::byte>(v));
  const auto f = parse_safetensors(b, "half");
  const Tensor& h = f.tensor("h", "half");
  BOOST_TEST(h.data()[0] == 1.0f);
  BOOST_TEST(h.data()[1] == -2.5f);
  BOOST_TEST(h.data()[2] == std::ldexp(1.0f, -24));
  BOOST_TEST(f.tensor("b", "half").data()[0] == 1.0f);
  BOOST_TEST(f.tensor("b", "half").data()[1] == -3.0f);
  BOOST_TEST((f.tensors.at("h").stored == StDType::f16));
}

BOOST_AUTO_TEST_CASE(st_accepts_valid) { BOOST_TEST(parse_safetensors(st(kOne, 8), "ok").tensors.size() == 1u); }
BOOST_AUTO_TEST_CASE(st_rejects_too_short) { st_rejects(bytes("abc"), "shorter than its 8-byte header length"); }
BOOST_AUTO_TEST_CASE(st_rejects_header_over_cap) {
  auto b = st(kOne, 8);
  b[4] = std::byte{1};  // header length 2^32 + ...
  st_rejects(b, "exceeds the 100 MiB cap");
}
BOOST_AUTO_TEST_CASE(st_rejects_truncated_header) {
  auto b = st(kOne, 0);
  b.resize(b.size() - 5);
  st_rejects(b, "truncated safetensors header");
}
BOOST_AUTO_TEST_CASE(st_rejects_invalid_json) { st_rejects(st(R"({"t": {"dtype": "F32",)", 0), "not valid JSON"); }
BOOST_AUTO_TEST_CASE(st_rejects_non_object) { st_rejects(st("[1, 2]", 0), "not a JSON object"); }
BOOST_AUTO_TEST_CASE(st_rejects_incomplete_entry) { st_rejects(st(R"({"t": {"dtype": "F32", "shape": [2]}})", 8), "exactly dtype, shape and data_offsets"); }
BOOST_AUTO_TEST_CASE(st_rejects_unsupported_dtype) { st_rejects(st(R"({"t": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})", 8), "unsupported dtype 'F64'"); }
BOOST_AUTO_TEST_CASE(st_rejects_negative_shape) { st_rejects(st(R"({"t": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8), "non-negative integers"); }
BOOST_AUTO_TEST_CASE(st_rejects_overflowing_shape) { st_rejects(st(R"({"t": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 8]}})", 8), "shape overflows"); }
BOOST_AUTO_TEST_CASE(st_rejects_offsets_outside_data) { st_rejects(st(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4), "outside the 4-byte data section"); }
BOOST_AUTO_TEST_CASE(st_rejects_reversed_offsets) { st_rejects(st(R"({"t": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}})", 8), "data_offsets [8, 0)"); }
BOOST_AUTO_TEST_CASE(st_rejects_size_mismatch) { st_rejects(st(R"({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8), "does not match dtype and shape"); }
BOOST_AUTO_TEST_CASE(st_rejects_overlap) {
  st_rejects(st(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12), "overlaps");
}
BOOST_AUTO_TEST_CASE(st_rejects_gap) { st_rejects(st(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8), "gap in the data section"); }
BOOST_AUTO_TEST_CASE(st_rejects_trailing_data) { st_rejects(st(kOne, 12), "4 bytes of trailing data"); }
BOOST_AUTO_TEST_CASE(st_rejects_bad_metadata) { st_rejects(st(R"({"__metadata__": {"k": 1}})", 0), "is not a string"); }

// A sealed file checks; any change to a value or to the metadata, or no seal, is named.
BOOST_AUTO_TEST_CASE(safetensors_seal) {
  SafetensorsFile f;
  f.tensors["w"] = {StDType::f32, Tensor::full({2, 3}, 0.25f), {}, {2, 3}};
  f.metadata["epochs_done"] = "3";
  test::expect_error([&] { check_seal(f, "ckpt.safetensors"); }, {"ckpt.safetensors", "no content_sha256"});
  seal(f);
  const SafetensorsFile read = parse_safetensors(encode_safetensors(f), "ckpt.safetensors");
  check_seal(read, "ckpt.safetensors");
  SafetensorsFile value = read;
  value.tensors["w"].values = read.tensor("w", "x").clone();
  value.tensors["w"].values.data()[4] = std::nextafter(0.25f, 1.0f);
  test::expect_error([&] { check_seal(value, "ckpt.safetensors"); }, {"ckpt.safetensors", "does not match"});
  SafetensorsFile meta = read;
  meta.metadata["epochs_done"] = "4";
  test::expect_error([&] { check_seal(meta, "ckpt.safetensors"); }, {"ckpt.safetensors", "does not match"});
}

BOOST_AUTO_TEST_CASE(atomic_write_leaves_no_temporaries) {
  const fs::path dir = temp_dir();
  const std::string p = (dir / "out.bin").string();
  write_file_atomic(p, bytes("first"));
  write_file_atomic(p, bytes("second"));
  BOOST_TEST(read_file(p).size() == 6u);
  BOOST_TEST(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
  expect_error([&] { write_file_atomic((dir / "missing" / "case.file").string(), bytes("x")); }, "cannot create");
  fs::remove_all(dir);
}

// FIPS 180-4 / NIST example vectors, including the two-block padding case (56 bytes).
BOOST_AUTO_TEST_CASE(sha256_known_vectors) {
  BOOST_TEST(sha256_hex(bytes("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  BOOST_TEST(sha256_hex(bytes("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  BOOST_TEST(sha256_hex(bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  BOOST_TEST(sha256_hex(bytes(std::string(1000000, 'a'))) ==
             "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
