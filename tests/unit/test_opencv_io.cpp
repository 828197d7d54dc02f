// The OpenCV-backed parts: ONNX import against the torch.onnx fixture (tiny_vgg.*), image
// folders (PNG files encoded here, independently of OpenCV), augmentation and figures (charts
// decoded here with zlib and checked against the plot-area geometry). Built without OpenCV,
// each checks the Error that says so instead.
#define BOOST_TEST_MODULE opencv_io
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <tuple>
#include <vector>

#include "support.hpp"
#include "morphokd/data/augment.hpp"
#include "morphokd/data/images.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/models/onnx_import.hpp"
#include "morphokd/models/vgg.hpp"
#include "morphokd/pipeline/figures.hpp"
#include "morphokd/random.hpp"
#include "morphokd/runtime.hpp"

using namespace morphokd;
namespace fs = std::filesystem;

namespace {

const std::string kGolden = MORPHOKD_GOLDEN_DIR;

bool have_opencv() { return build_info().find("opencv: compiled out") == std::string::npos; }

using test::expect_error;

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("morphokd-opencv-io-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

void write_file(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

// --- a minimal PNG encoder: gray 8 or 16 bit, deflate "stored" blocks (no compression) ---
std::uint32_t crc32(const std::string& s) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}
void put_be32(std::string& s, std::uint32_t v) {
  for (int k = 3; k >= 0; --k) s += static_cast<char>((v >> (8 * k)) & 0xFF);
}
std::string chunk(const std::string& type, const std::string& data) {
  std::string out;
  put_be32(out, static_cast<std::uint32_t>(data.size()));
  out += type + data;
  put_be32(out, crc32(type + data));
  return out;
}
// pixels: row-major h x w, each < 2^bits.
void write_png(const fs::path& p, int w, int h, int bits, const std::vector<std::uint16_t>& pixels) {
  std::string raw;  // filter byte 0 per row, then big-endian samples
  for (int y = 0; y < h; ++y) {
    raw += '\0';
    for (int x = 0; x < w; ++x) {
      const std::uint16_t v = pixels[static_cast<std::size_t>(y * w + x)];
      if (bits == 16) raw += static_cast<char>(v >> 8);
      raw += static_cast<char>(v & 0xFF);
    }
  }
  std::string z = "\x78\x01";  // zlib header, then stored blocks of <= 65535 bytes
  for (std::size_t at = 0; at < raw.size(); at += 65535) {
    const std::size_t n = std::min<std::size_t>(65535, raw.size() - at);
    z += static_cast<char>(at + n == raw.size() ? 1 : 0);
    for (std::size_t v : {n, n ^ 0xFFFF}) z += std::string{static_cast<char>(v & 0xFF), static_cast<char>(v >> 8)};
    z += raw.substr(at, n);
  }
  std::uint32_t a = 1, b = 0;  // Adler-32
  for (unsigned char c : raw) a = (a + c) % 65521, b = (b + a) % 65521;
  put_be32(z, (b << 16) | a);
  std::string ihdr;
  put_be32(ihdr, static_cast<std::uint32_t>(w));
  put_be32(ihdr, static_cast<std::uint32_t>(h));
  ihdr += std::string{static_cast<char>(bits), 0, 0, 0, 0};  // gray, deflate, no filter, no interlace
  write_file(p, "\x89PNG\r\n\x1a\n" + chunk("IHDR", ihdr) + chunk("IDAT", z) + chunk("IEND", ""));
}

float px(const Tensor& cells, Index n, Index y, Index x) { return cells.data()[(n * 64 + y) * 64 + x]; }

}  // namespace

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(onnx_import)

BOOST_AUTO_TEST_CASE(tiny_vgg_matches_torch) {
  const std::string onnx = kGolden + "/tiny_vgg.onnx";
  if (!have_opencv()) return expect_error([&] { models::import_vgg_onnx(onnx); }, {onnx, "MORPHOKD_WITH_OPENCV=ON"});
  const SafetensorsFile imported = models::import_vgg_onnx(onnx);
  const SafetensorsFile expected = test::fixture("tiny_vgg");
  BOOST_TEST(imported.tensors.size() == 8u);
  BOOST_REQUIRE(imported.tensors.size() == expected.tensors.size());
  for (const auto& [name, want] : expected.tensors) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_REQUIRE(imported.contains(name));
      const StEntry& got = imported.tensors.at(name);
      BOOST_TEST(got.shape == want.shape, boost::test_tools::per_element());
      BOOST_REQUIRE(got.values.shape() == want.values.shape());
      BOOST_TEST(std::memcmp(got.values.data(), want.values.data(), 4 * want.values.numel()) == 0, "not bit-exact");
    }
  }
  // The imported weights drive our VGG builder to torch's output (rel 1e-5).
  auto net = models::vgg_features({{4, 4, models::kPool, 8, models::kPool, 8, models::kPool}, true, false}, 3);
  net->load_state_dict(imported, onnx);
  net->eval();
  const SafetensorsFile io = test::fixture("tiny_vgg_io");
  MORPHOKD_CHECK_GOLDEN(net->forward(io.tensor("x", "io")), io, "y", 1e-5);
}

BOOST_AUTO_TEST_CASE(rejects_non_onnx_and_missing_files) {
  TempDir tmp;
  const std::string bad = (tmp.path / "not_a_model.onnx").string();
  write_file(bad, "this is not a protobuf\n");
  const std::string words = have_opencv() ? "cannot read ONNX model" : "MORPHOKD_WITH_OPENCV=ON";
  expect_error([&] { models::import_vgg_onnx(bad); }, {bad, words});
  const std::string missing = (tmp.path / "missing.onnx").string();
  expect_error([&] { models::import_vgg_onnx(missing); }, {missing});
}

BOOST_AUTO_TEST_CASE(rejects_a_leaky_relu_naming_the_layer) {
  if (!have_opencv()) return;  // the case above checks the Error
  const std::string onnx = kGolden + "/tiny_vgg_leaky.onnx";
  expect_error([&] { models::import_vgg_onnx(onnx); }, {onnx, "LeakyRelu", "negative slope"});
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(image_folder)

BOOST_AUTO_TEST_CASE(reads_scales_sorts_and_crops) {
  TempDir tmp;
  if (!have_opencv())
    return expect_error([&] { data::load_image_folder(tmp.path.string()); }, {tmp.path.string(), "MORPHOKD_WITH_OPENCV=ON"});
  // Written out of name order; the .txt is skipped, the upper-case extension is not.
  std::vector<std::uint16_t> crop(80 * 100, 0);  // 100 wide, 80 high: centre square is x in [10, 90)
  for (int y = 0; y < 80; ++y)
    for (int x = 10; x < 90; ++x) crop[y * 100 + x] = (y >= 30 && y < 50 && x >= 40 && x < 60) ? 0 : 255;
  write_png(tmp.path / "c_crop.png", 100, 80, 8, crop);
  write_file(tmp.path / "notes.txt", "not an image");
  std::vector<std::uint16_t> p8(64 * 64), p16(64 * 64);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) {
      p8[y * 64 + x] = static_cast<std::uint16_t>((x + 4 * y) % 256);
      p16[y * 64 + x] = static_cast<std::uint16_t>((x * 1021 + y * 17) % 65536);
    }
  p16[5 * 64 + 7] = 65535;
  write_png(tmp.path / "b_16bit.PNG", 64, 64, 16, p16);
  write_png(tmp.path / "a_8bit.png", 64, 64, 8, p8);
  write_png(tmp.path / "d_small.png", 20, 20, 8, std::vector<std::uint16_t>(400, 51));
  std::vector<std::uint16_t> checker(192 * 192);
  for (int i = 0; i < 192 * 192; ++i) checker[i] = static_cast<std::uint16_t>((i / 192 + i % 192) % 2 * 255);
  write_png(tmp.path / "e_big.png", 192, 192, 8, checker);

  const data::ImageFolder f = data::load_image_folder(tmp.path.string());
  const std::vector<std::string> names{"a_8bit.png", "b_16bit.PNG", "c_crop.png", "d_small.png", "e_big.png"};
  BOOST_TEST(f.names == names, boost::test_tools::per_element());
  BOOST_REQUIRE(f.cells.shape() == Shape({5, 1, 64, 64}));

  int exact8 = 0, exact16 = 0;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) {
      exact8 += px(f.cells, 0, y, x) == static_cast<float>(p8[y * 64 + x]) / 255.0f;
      exact16 += px(f.cells, 1, y, x) == static_cast<float>(p16[y * 64 + x]) / 65535.0f;
    }
  BOOST_TEST(exact8 == 64 * 64);
  BOOST_TEST(exact16 == 64 * 64);
  BOOST_TEST(px(f.cells, 0, 63, 3) == 1.0f);  // 8-bit 255
  BOOST_TEST(px(f.cells, 1, 5, 7) == 1.0f);   // 16-bit 65535

  // 80x80 centre crop shrunk by 0.8 (area): white, with the dark square at [30, 50) -> [24, 40).
  // A wrong crop offset would bring in the black side bands.
  double worst = 0;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) {
      const bool dark = y >= 24 && y < 40 && x >= 24 && x < 40;
      worst = std::max(worst, std::fabs(px(f.cells, 2, y, x) - (dark ? 0.0 : 1.0)));
    }
  BOOST_TEST(worst <= 1e-5);
  // A 20x20 constant image enlarged (linear) stays constant.
  worst = 0;
  for (int i = 0; i < 64 * 64; ++i) worst = std::max(worst, std::fabs(f.cells.data()[3 * 4096 + i] - 0.2));
  BOOST_TEST(worst <= 1e-6);
  // A 192x192 checkerboard shrunk 3x by area averaging: 3x3 block means 4/9 and 5/9
  // (bilinear sampling would pick single pixels, 0 or 1).
  worst = 0;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) worst = std::max(worst, std::fabs(px(f.cells, 4, y, x) - ((x + y) % 2 ? 5.0 : 4.0) / 9));
  BOOST_TEST(worst <= 1e-6);
}

BOOST_AUTO_TEST_CASE(errors_name_the_folder_or_file) {
  if (!have_opencv()) return;  // covered by the case above
  TempDir tmp;
  const std::string dir = tmp.path.string();
  expect_error([&] { data::load_image_folder(dir); }, {dir, "no PNG/JPEG/TIFF/BMP images"});
  write_file(tmp.path / "readme.txt", "x");
  expect_error([&] { data::load_image_folder(dir); }, {dir, "no PNG/JPEG/TIFF/BMP images"});
  expect_error([&] { data::load_image_folder(dir + "/nope"); }, {dir + "/nope", "no such folder"});
  write_png(tmp.path / "a.png", 64, 64, 8, std::vector<std::uint16_t>(4096, 1));
  write_file(tmp.path / "b.png", "garbage, not a PNG");
  expect_error([&] { data::load_image_folder(dir); }, {(tmp.path / "b.png").string(), "not a PNG, JPEG, TIFF or BMP image"});
  // A PNG cut after its signature and header: the signature passes, decoding fails.
  const std::vector<std::byte> png = read_file((tmp.path / "a.png").string());
  write_file(tmp.path / "b.png", std::string(reinterpret_cast<const char*>(png.data()), 40));
  expect_error([&] { data::load_image_folder(dir); }, {(tmp.path / "b.png").string(), "cannot decode image"});
  // A 28-byte "PNG" whose header declares 5000 x 64 pixels: refused before any decoding.
  std::string huge(png.size() >= 24 ? std::string(reinterpret_cast<const char*>(png.data()), 24) : std::string());
  huge[16] = 0, huge[17] = 0, huge[18] = 0x13, huge[19] = static_cast<char>(0x88);
  write_file(tmp.path / "b.png", huge + "xxxx");
  expect_error([&] { data::load_image_folder(dir); }, {(tmp.path / "b.png").string(), "5000 x 64 pixels", "at most 4096 per side"});
  std::vector<float> small(16);
  expect_error([&] { data::decode_cell(png, "cell.png", small); }, {"cell.png", "64x64"});
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(augment)

namespace {
Tensor ramp(Index b, Index h, Index w) {
  Tensor t = Tensor::empty({b, 1, h, w});
  for (Index i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(i % (h * w));
  return t;
}
Tensor run(const Tensor& in, const data::AugmentOptions& o, std::uint64_t seed, std::uint64_t epoch,
           std::vector<std::int64_t> ids) {
  Tensor out = Tensor::full(in.shape(), NAN);
  data::augment_batch(in, out, o, seed, epoch, ids);
  return out;
}
bool same_bits(const float* a, const float* b, Index n) { return std::memcmp(a, b, 4 * n) == 0; }
data::AugmentOptions rotate_only(double max_degrees = 180) {
  data::AugmentOptions o;
  o.rotate = true;
  o.max_degrees = max_degrees;
  return o;
}
}  // namespace

BOOST_AUTO_TEST_CASE(parse_and_print) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"none", "none"},         {"flip", "hflip,vflip"},        {"hflip", "hflip"},
      {"vflip,rotate", "vflip,rotate"}, {"flip,rotate", "hflip,vflip,rotate"}, {"rotate,hflip", "hflip,rotate"}};
  for (const auto& [text, canonical] : cases) {
    const auto o = data::parse_augment(text);
    BOOST_TEST(data::augment_string(o) == canonical);
    const auto back = data::parse_augment(canonical);
    BOOST_TEST((back.hflip == o.hflip && back.vflip == o.vflip && back.rotate == o.rotate), text);
  }
  BOOST_TEST(!data::parse_augment("none").any());
  try {
    data::parse_augment("flip,xyz");
    BOOST_ERROR("no error for 'xyz'");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()) ==
               "--augment: unknown augmentation 'xyz' (expected none or a comma list of flip, hflip, vflip, rotate)");
  }
  for (const char* bad : {"", "flip,", "Flip", "rotate90"})
    expect_error([&] { data::parse_augment(bad); }, {"--augment", "unknown augmentation"});
}

BOOST_AUTO_TEST_CASE(flips_are_exact) {
  const Tensor in = ramp(1, 3, 4);  // value = 4 y + x
  data::AugmentOptions o;
  o.flip_probability = 1.0;  // always
  o.hflip = true;
  Tensor h = run(in, o, 1, 0, {0});
  o.hflip = false, o.vflip = true;
  Tensor v = run(in, o, 1, 0, {0});
  o.hflip = true;
  Tensor hv = run(in, o, 1, 0, {0});
  o.flip_probability = 0.0;  // never
  Tensor none = run(in, o, 1, 0, {0});
  int ok = 0;
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) {
      const float* at[] = {h.data(), v.data(), hv.data(), none.data()};
      ok += at[0][y * 4 + x] == static_cast<float>(4 * y + 3 - x);
      ok += at[1][y * 4 + x] == static_cast<float>(4 * (2 - y) + x);
      ok += at[2][y * 4 + x] == static_cast<float>(4 * (2 - y) + 3 - x);
      ok += at[3][y * 4 + x] == static_cast<float>(4 * y + x);
    }
  BOOST_TEST(ok == 4 * 12);
  // With p = 0.5 both outcomes occur across samples.
  o.flip_probability = 0.5, o.vflip = false;
  const Tensor many = run(ramp(16, 3, 4), o, 1, 0, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
  int flipped = 0;
  for (Index b = 0; b < 16; ++b) flipped += many.data()[b * 12] == 3.0f;
  BOOST_TEST(flipped > 0);
  BOOST_TEST(flipped < 16);
}

BOOST_AUTO_TEST_CASE(rotation_properties) {
  const Tensor flat = Tensor::full({2, 1, 64, 64}, 0.7f);
  if (!have_opencv()) {
    Tensor out = Tensor::empty(flat.shape());
    return expect_error([&] { data::augment_batch(flat, out, rotate_only(), 1, 0, std::vector<std::int64_t>{0, 1}); },
                        {"rotate", "MORPHOKD_WITH_OPENCV=ON"});
  }
  // A constant image stays constant (reflected border, weights summing to 1).
  const Tensor c = run(flat, rotate_only(), 3, 1, {4, 9});
  double worst = 0;
  for (Index i = 0; i < c.numel(); ++i) worst = std::max(worst, std::fabs(c.data()[i] - 0.7));
  BOOST_TEST(worst <= 1e-6);

  // Odd size: the centre pixel is the rotation centre and keeps its value; others move.
  Tensor noise = Tensor::empty({1, 1, 9, 9});
  for (Index i = 0; i < 81; ++i) noise.data()[i] = static_cast<float>(uniform01(42, i));
  const Tensor r = run(noise, rotate_only(), 3, 1, {2});
  BOOST_TEST(std::fabs(r.data()[40] - noise.data()[40]) <= 1e-6);
  double moved = 0;
  for (Index i = 0; i < 81; ++i) moved = std::max(moved, double(std::fabs(r.data()[i] - noise.data()[i])));
  BOOST_TEST(moved > 0.05);

  // max_degrees = 0 is the identity, bit for bit.
  const Tensor same = run(noise, rotate_only(0), 3, 1, {2});
  BOOST_TEST(same_bits(same.data(), noise.data(), 81));
}

BOOST_AUTO_TEST_CASE(rotation_follows_the_documented_angle) {
  if (!have_opencv()) return;  // rotation_properties checks the Error
  // angle = (2 u - 1) max, u = uniform01(splitmix64(seed * 1000003 + epoch), 4 id + 3), turning
  // counter-clockwise as displayed about ((w-1)/2, (h-1)/2). Pick an id with a large angle.
  const std::uint64_t seed = 11, epoch = 2, stream = splitmix64(seed * 1000003 + epoch);
  std::int64_t id = 0;
  while (std::fabs(2 * uniform01(stream, 4 * id + 3) - 1) < 0.3) ++id;
  const double deg = (2 * uniform01(stream, 4 * id + 3) - 1) * 180, a = deg * std::numbers::pi / 180;
  BOOST_TEST_MESSAGE("id " << id << " angle " << deg);
  // On a linear ramp, bilinear interpolation is exact but for OpenCV's 1/32-pixel coordinate grid.
  Tensor in = Tensor::empty({1, 1, 64, 64});
  auto f = [](double x, double y) { return 0.01 * x + 0.02 * y; };
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) in.data()[y * 64 + x] = static_cast<float>(f(x, y));
  const Tensor out = run(in, rotate_only(), seed, epoch, {id});
  double worst = 0;
  int checked = 0;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) {
      const double dx = x - 31.5, dy = y - 31.5;
      const double sx = 31.5 + std::cos(a) * dx - std::sin(a) * dy, sy = 31.5 + std::sin(a) * dx + std::cos(a) * dy;
      if (sx < 0 || sx > 63 || sy < 0 || sy > 63) continue;  // border reflection
      worst = std::max(worst, std::fabs(out.data()[y * 64 + x] - f(sx, sy)));
      ++checked;
    }
  BOOST_TEST(checked > 2000);
  BOOST_TEST(worst <= 1e-3);
}

BOOST_AUTO_TEST_CASE(reproducible_per_sample) {
  data::AugmentOptions o = data::parse_augment(have_opencv() ? "flip,rotate" : "flip");
  Tensor in = Tensor::empty({3, 1, 64, 64});
  for (Index i = 0; i < in.numel(); ++i) in.data()[i] = static_cast<float>(uniform01(5, i));
  const Tensor a = run(in, o, 7, 3, {10, 11, 12});
  const Tensor b = run(in, o, 7, 3, {10, 11, 12});
  BOOST_TEST(same_bits(a.data(), b.data(), a.numel()));
  // Sample 11 alone in a batch of 1: the same bits as in the middle of the batch.
  const Tensor one = run(in.slice(1, 2).clone(), o, 7, 3, {11});
  BOOST_TEST(same_bits(one.data(), a.data() + 4096, 4096));
  // Same again on one thread.
  const int threads = num_threads();
  set_num_threads(1);
  const Tensor single = run(in, o, 7, 3, {10, 11, 12});
  set_num_threads(threads);
  BOOST_TEST(same_bits(single.data(), a.data(), a.numel()));
  // Another epoch or seed draws differently (some of the 3 samples change).
  BOOST_TEST(!same_bits(run(in, o, 7, 4, {10, 11, 12}).data(), a.data(), a.numel()));
  BOOST_TEST(!same_bits(run(in, o, 8, 3, {10, 11, 12}).data(), a.data(), a.numel()));
}

BOOST_AUTO_TEST_CASE(batch_errors) {
  const Tensor in = Tensor::zeros({2, 1, 4, 4});
  Tensor out = Tensor::empty(in.shape());
  const auto o = data::parse_augment("flip");
  expect_error([&] { data::augment_batch(in, out, o, 1, 0, std::vector<std::int64_t>{0}); }, {"1 sample ids", "batch of 2"});
  Tensor alias = in;
  expect_error([&] { data::augment_batch(in, alias, o, 1, 0, std::vector<std::int64_t>{0, 1}); }, {"alias"});
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(figures)

namespace {

using pipeline::BoxGroup;
using pipeline::Chart;
using pipeline::PlotArea;
using pipeline::Rgb;
using pipeline::Series;

// --- reading the figures back: an 8-bit RGB PNG decoder over zlib, independent of OpenCV ---
struct Picture {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;  // row-major, 3 bytes a pixel
  Rgb at(int x, int y) const {
    const std::uint8_t* p = rgb.data() + 3 * (static_cast<std::size_t>(y) * width + x);
    return {p[0], p[1], p[2]};
  }
};

std::uint32_t be32(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t k = 0; k < 4; ++k) v = (v << 8) | static_cast<unsigned char>(s[at + k]);
  return v;
}

Picture read_picture(const fs::path& p) {
  const std::vector<std::byte> bytes = read_file(p.string());
  const std::string s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  BOOST_REQUIRE(s.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  Picture pic;
  std::string z;
  for (std::size_t at = 8; at + 12 <= s.size(); at += 12 + be32(s, at)) {
    const std::string type = s.substr(at + 4, 4), data = s.substr(at + 8, be32(s, at));
    if (type == "IHDR") {
      pic.width = static_cast<int>(be32(data, 0)), pic.height = static_cast<int>(be32(data, 4));
      BOOST_REQUIRE_MESSAGE(data[8] == 8 && data[9] == 2 && data[12] == 0, "not 8-bit RGB, non-interlaced");
    } else if (type == "IDAT") {
      z += data;
    }
  }
  const std::size_t stride = 3 * static_cast<std::size_t>(pic.width);
  std::vector<unsigned char> raw(static_cast<std::size_t>(pic.height) * (stride + 1));
  uLongf n = raw.size();
  BOOST_REQUIRE(uncompress(raw.data(), &n, reinterpret_cast<const Bytef*>(z.data()), z.size()) == Z_OK &&
                n == raw.size());
  pic.rgb.resize(static_cast<std::size_t>(pic.height) * stride);
  for (std::size_t y = 0; y < static_cast<std::size_t>(pic.height); ++y) {  // undo the per-row filters
    const unsigned char filter = raw[y * (stride + 1)], *in = &raw[y * (stride + 1) + 1];
    std::uint8_t* out = &pic.rgb[y * stride];
    const std::uint8_t* up = y > 0 ? out - stride : nullptr;
    for (std::size_t i = 0; i < stride; ++i) {
      const int a = i >= 3 ? out[i - 3] : 0, b = up ? up[i] : 0, c = i >= 3 && up ? up[i - 3] : 0;
      const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
      const int predict[] = {0, a, b, (a + b) / 2, pa <= pb && pa <= pc ? a : pb <= pc ? b : c};
      BOOST_REQUIRE(filter < 5);
      out[i] = static_cast<std::uint8_t>(in[i] + predict[filter]);
    }
  }
  return pic;
}

// Pixel p is colour c laid over white with a coverage of at least 0.35: c itself, or an
// antialiased edge of a thin line in c (not the pale grid, not another palette colour).
bool tinted(Rgb p, Rgb c) {
  const int pv[] = {p.r, p.g, p.b}, cv[] = {c.r, c.g, c.b};
  int k = 0;  // the channel where c differs most from white
  for (int i = 1; i < 3; ++i) k = cv[i] < cv[k] ? i : k;
  const double alpha = (255.0 - pv[k]) / (255 - cv[k]);
  if (alpha < 0.35) return false;
  for (int i = 0; i < 3; ++i)
    if (std::fabs(pv[i] - (255 - alpha * (255 - cv[i]))) > 12) return false;
  return true;
}
// Pixels of colour c in columns [x0, x1) and rows [y0, y1).
int count(const Picture& p, Rgb c, int x0, int y0, int x1, int y1) {
  int n = 0;
  for (int y = std::max(0, y0); y < std::min(p.height, y1); ++y)
    for (int x = std::max(0, x0); x < std::min(p.width, x1); ++x) n += tinted(p.at(x, y), c);
  return n;
}
// Pixels of colour c within `r` pixels (square) of the data point (x, y).
int count_near(const Picture& p, const PlotArea& a, double x, double y, Rgb c, int r = 2) {
  const int cx = static_cast<int>(std::lround(a.column(x))), cy = static_cast<int>(std::lround(a.row(y)));
  return count(p, c, cx - r, cy - r, cx + r + 1, cy + r + 1);
}
const Rgb kBlackRgb{0, 0, 0};

Chart unit_chart() {
  Chart c;
  c.title = "AUC against epsilon", c.x_label = "epsilon", c.y_label = "AUC", c.y_min = 0, c.y_max = 1;
  return c;
}

// The call must fail naming `path` and the words, leaving no file behind.
template <class F>
void expect_refused(F&& call, const fs::path& path, const std::vector<std::string>& words) {
  try {
    call();
    BOOST_ERROR("no error; expected one mentioning '" << words.front() << "'");
  } catch (const Error& e) {
    const std::string m = e.what();
    BOOST_TEST(m.find('\n') == std::string::npos, "message spans lines: " << m);
    for (const auto& w : words) BOOST_TEST(m.find(w) != std::string::npos, "message '" << m << "' lacks '" << w << "'");
    BOOST_TEST(m.starts_with(path.string() + ": "), "message '" << m << "' does not start with the file");
  }
  BOOST_TEST(!fs::exists(path), path << " written despite the error");
}

}  // namespace

BOOST_AUTO_TEST_CASE(nice_ticks_step_by_1_2_5) {
  auto same = [](std::vector<double> got, std::vector<double> want) {
    BOOST_REQUIRE_MESSAGE(got.size() == want.size(), got.size() << " ticks, expected " << want.size());
    for (std::size_t i = 0; i < got.size(); ++i) BOOST_TEST(got[i] == want[i], boost::test_tools::tolerance(1e-12));
  };
  same(pipeline::nice_ticks(0, 1), {0, 0.2, 0.4, 0.6, 0.8, 1});
  same(pipeline::nice_ticks(-0.05, 1.05), {0, 0.2, 0.4, 0.6, 0.8, 1});
  same(pipeline::nice_ticks(0.45, 0.55), {0.46, 0.48, 0.5, 0.52, 0.54});
  same(pipeline::nice_ticks(-0.0005, 0.0105), {0, 0.002, 0.004, 0.006, 0.008, 0.01});
  same(pipeline::nice_ticks(-3, 1234), {0, 200, 400, 600, 800, 1000, 1200});
  same(pipeline::nice_ticks(-7, -2), {-7, -6, -5, -4, -3, -2});
  // Ranges of 1e-4 to 1e4 lying anywhere within 50 spans of 0: 3 to 11 ticks inside, evenly
  // spaced by 1, 2 or 5 times a power of ten, no -0.
  for (std::uint64_t i = 0; i < 500; ++i) {
    const double span = std::pow(10.0, 8 * uniform01(4, i) - 4), lo = (uniform01(3, i) - 0.5) * 100 * span,
                 hi = lo + span;
    const std::vector<double> t = pipeline::nice_ticks(lo, hi);
    BOOST_TEST_CONTEXT("[" << lo << ", " << hi << "]") {
      BOOST_REQUIRE(t.size() >= 3u);
      BOOST_TEST(t.size() <= 11u);
      const double step = t[1] - t[0], mantissa = step / std::pow(10.0, std::floor(std::log10(step)));
      BOOST_TEST((std::fabs(mantissa - 1) < 1e-6 || std::fabs(mantissa - 2) < 1e-6 || std::fabs(mantissa - 5) < 1e-6 ||
                  std::fabs(mantissa - 10) < 1e-6),
                 "step " << step);
      BOOST_TEST((t.front() >= lo - 1e-9 * step && t.back() <= hi + 1e-9 * step));
      for (std::size_t k = 1; k < t.size(); ++k) BOOST_TEST(std::fabs(t[k] - t[k - 1] - step) <= 1e-9 * step);
      for (double v : t)
        if (v == 0) BOOST_TEST(!std::signbit(v));
    }
  }
  expect_error([] { pipeline::nice_ticks(1, 1); }, {"ticks", "lo < hi"});
  expect_error([] { pipeline::nice_ticks(0, NAN); }, {"ticks", "lo < hi"});
}

BOOST_AUTO_TEST_CASE(chart_area_maps_data_onto_the_frame) {
  // Fixed y range; x from the data with a 5% margin. The frame's corners are the range's ends.
  const PlotArea a = pipeline::chart_area(unit_chart(), {{.x = {0, 0.5, 1}, .y = {0.2, 0.9, 0.4}}});
  BOOST_TEST((a.width == 640 && a.height == 440));
  BOOST_TEST(
      (a.left > 40 && a.left < a.right && a.right < a.width && a.top > 20 && a.top < a.bottom && a.bottom < a.height));
  BOOST_TEST((a.y_lo == 0 && a.y_hi == 1));
  BOOST_TEST(a.x_lo == -0.05, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(a.x_hi == 1.05, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(a.column(a.x_lo) == a.left, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(a.column(a.x_hi) == a.right, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(a.row(0) == a.bottom, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(a.row(1) == a.top, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(a.row(0.25) == a.bottom - 0.25 * (a.bottom - a.top), boost::test_tools::tolerance(1e-9));

  // y from the data, error bars included: [1 - 0.5, 3 + 1] widened by 5% of 3.5 each side.
  Chart c = unit_chart();
  c.y_min = c.y_max = NAN;
  c.x_categories = {"pool2", "pool3", "pool4", "pool5"};
  const PlotArea b = pipeline::chart_area(c, {{.x = {0, 3}, .y = {1, 3}, .err = {0.5, 1}}});
  BOOST_TEST((b.x_lo == -0.5 && b.x_hi == 3.5));
  BOOST_TEST(b.y_lo == 0.5 - 0.175, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(b.y_hi == 4 + 0.175, boost::test_tools::tolerance(1e-12));
  // Only y_min fixed: the margin only on top.
  c.y_min = 0;
  BOOST_TEST(pipeline::chart_area(c, {{.x = {0, 3}, .y = {1, 3}}}).y_hi == 3.15, boost::test_tools::tolerance(1e-12));
  // Many categories widen the image rather than crowd the names.
  c.x_categories.assign(12, "student A");
  const PlotArea wide = pipeline::chart_area(c, {{.x = {0, 11}, .y = {1, 3}}});
  BOOST_TEST(wide.width > 640);
  BOOST_TEST((wide.column(1) - wide.column(0)) >= 90);

  // Box plots: groups at 0..k-1, y over every value (outliers included) with the margin.
  const PlotArea box = pipeline::boxplot_area({{"a", {1, 2, 3}}, {"b", {-1, 9}}});
  BOOST_TEST((box.x_lo == -0.5 && box.x_hi == 1.5));
  BOOST_TEST(box.y_lo == -1.5, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(box.y_hi == 9.5, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(chart_png_draws_the_series_where_the_area_maps_them) {
  TempDir tmp;
  const fs::path path = tmp.path / "curve.png";
  const std::vector<Series> two{{.name = "normal", .x = {0, 0.5, 1}, .y = {0.2, 0.9, 0.4}},
                                {.name = "abnormal", .x = {0, 1}, .y = {0.8, 0.1}}};
  if (!have_opencv())
    return expect_error([&] { pipeline::write_chart_png(path.string(), unit_chart(), two); },
                        {path.string(), "MORPHOKD_WITH_OPENCV=ON"});
  pipeline::write_chart_png(path.string(), unit_chart(), two);
  const PlotArea a = pipeline::chart_area(unit_chart(), two);
  const Picture p = read_picture(path);
  BOOST_REQUIRE((p.width == a.width && p.height == a.height));
  // The frame is where the area says (its four sides, halfway along).
  const int mid_x = (a.left + a.right) / 2, mid_y = (a.top + a.bottom) / 2;
  BOOST_TEST((p.at(a.left, mid_y) == kBlackRgb && p.at(a.right, mid_y) == kBlackRgb));
  BOOST_TEST((p.at(mid_x, a.top) == kBlackRgb && p.at(mid_x, a.bottom) == kBlackRgb));
  // Each point's marker in its series' colour, where the mapping puts it and not mirrored.
  const Rgb blue = pipeline::series_colour(0), orange = pipeline::series_colour(1);
  BOOST_TEST(!(blue == orange));
  for (std::size_t j = 0; j < 3; ++j) {
    BOOST_TEST(count_near(p, a, two[0].x[j], two[0].y[j], blue) >= 9, "point " << j);
    BOOST_TEST(count_near(p, a, two[0].x[j], 1 - two[0].y[j], blue, 4) == 0, "mirrored point " << j);
  }
  BOOST_TEST(count_near(p, a, 0, 0.8, orange) >= 9);
  BOOST_TEST(count_near(p, a, 1, 0.1, orange) >= 9);
  // Lines: halfway between the first two points.
  BOOST_TEST(count_near(p, a, 0.25, 0.55, blue, 3) > 0);
  BOOST_TEST(count(p, blue, 0, 0, p.width, p.height) > 200);
  BOOST_TEST(count(p, orange, 0, 0, p.width, p.height) > 200);
}

BOOST_AUTO_TEST_CASE(legend_goes_where_the_data_is_not) {
  TempDir tmp;
  if (!have_opencv()) return;  // the case above checks the Error
  // Data along the top and in the lower right: the lower-left quarter holds nothing but the legend,
  // so both series' colours appear there only through it.
  const fs::path path = tmp.path / "legend.png";
  const std::vector<Series> s{{.name = "normal", .x = {0, 1}, .y = {0.95, 0.95}},
                              {.name = "abnormal", .x = {0.8, 1}, .y = {0.05, 0.2}}};
  pipeline::write_chart_png(path.string(), unit_chart(), s);
  const PlotArea a = pipeline::chart_area(unit_chart(), s);
  const Picture p = read_picture(path);
  const int mid_x = (a.left + a.right) / 2, mid_y = (a.top + a.bottom) / 2;
  for (std::size_t i = 0; i < 2; ++i)
    BOOST_TEST(count(p, pipeline::series_colour(i), a.left, mid_y, mid_x, a.bottom) > 10, "series " << i);
  BOOST_TEST(p.width == a.width);
  // Data in all four corners: the legend goes right of the plot area, the image widened for it.
  const fs::path crowded = tmp.path / "crowded.png";
  const std::vector<Series> c{{.name = "top", .x = {0, 1}, .y = {0.95, 0.95}}, {.name = "bottom", .x = {0, 1}, .y = {0.05, 0.05}}};
  pipeline::write_chart_png(crowded.string(), unit_chart(), c);
  const Picture q = read_picture(crowded);
  BOOST_TEST(q.width > a.width);
  for (std::size_t i = 0; i < 2; ++i)
    BOOST_TEST(count(q, pipeline::series_colour(i), a.right + 1, a.top, q.width, a.bottom) > 10, "series " << i);
  // One unnamed series (the robustness curve): no legend, so nothing of its colour in an empty quarter.
  const fs::path one = tmp.path / "one.png";
  pipeline::write_chart_png(one.string(), unit_chart(), {{.x = {0, 1}, .y = {0.95, 0.9}}});
  BOOST_TEST(count(read_picture(one), pipeline::series_colour(0), a.left + 1, mid_y, a.right, a.bottom) == 0);
}

BOOST_AUTO_TEST_CASE(categories_and_error_bars) {
  TempDir tmp;
  if (!have_opencv()) return;
  const fs::path path = tmp.path / "bars.png";
  Chart c = unit_chart();
  c.y_min = c.y_max = NAN;
  c.x_categories = {"pool2", "pool3", "pool4", "pool5"};
  // Side by side by fractional positions, error bars only, as for Fig. 5.
  const std::vector<Series> s{
      {.name = "normal", .x = {-0.1, 0.9, 1.9, 2.9}, .y = {1, 2, 3, 4}, .err = {0.5, 0.5, 1, 1}, .line = false},
      {.name = "abnormal", .x = {0.1, 1.1, 2.1, 3.1}, .y = {2, 3, 5, 6}, .err = {1, 1, 1, 2}, .line = false}};
  pipeline::write_chart_png(path.string(), c, s);
  const PlotArea a = pipeline::chart_area(c, s);
  const Picture p = read_picture(path);
  BOOST_REQUIRE((p.width == a.width && p.height == a.height));
  const Rgb blue = pipeline::series_colour(0), orange = pipeline::series_colour(1);
  // Both ends of an error bar and its middle stretch, in the series colour.
  BOOST_TEST(count_near(p, a, 1.9, 4, blue, 1) > 0);
  BOOST_TEST(count_near(p, a, 1.9, 2, blue, 1) > 0);
  BOOST_TEST(count_near(p, a, 1.9, 3.7, blue, 1) > 0);
  BOOST_TEST(count_near(p, a, 3.1, 8, orange, 1) > 0);
  BOOST_TEST(count_near(p, a, 3.1, 4, orange, 1) > 0);
  // No line joins the points (line = false): nothing blue halfway between categories 1 and 2.
  BOOST_TEST(count_near(p, a, 1.4, 2.5, blue, 3) == 0);
}

BOOST_AUTO_TEST_CASE(chart_errors_name_the_file_and_write_nothing) {
  TempDir tmp;
  const fs::path path = tmp.path / "bad.png";
  Chart four = unit_chart(), upside = unit_chart();
  four.x_categories = {"a", "b", "c", "d"};
  upside.y_min = 1, upside.y_max = 0;
  struct Case {
    Chart chart;
    std::vector<Series> series;
    std::vector<std::string> words;
  };
  if (!have_opencv())
    return expect_refused([&] { pipeline::write_chart_png(path.string(), unit_chart(), {{.x = {0}, .y = {1}}}); }, path,
                          {"MORPHOKD_WITH_OPENCV=ON"});
  const std::vector<Case> cases{
      {unit_chart(), {}, {"at least one series"}},
      {unit_chart(), {{.x = {0}, .y = {1}}, {.name = "abnormal"}}, {"series 1 'abnormal'", "no points"}},
      {unit_chart(), {{.x = {0, 1, 2}, .y = {1, 2}}}, {"series 0", "x has 3 values, y 2"}},
      {unit_chart(), {{.x = {0, 1}, .y = {1, 2}, .err = {1}}}, {"err has 1 values, not 0 or 2"}},
      {unit_chart(), {{.x = {0, 1}, .y = {1, NAN}}}, {"y[1] is not finite"}},
      {unit_chart(), {{.x = {INFINITY, 1}, .y = {1, 2}}}, {"x[0] is not finite"}},
      {unit_chart(), {{.x = {0, 1}, .y = {1, 2}, .err = {0.1, -0.1}}}, {"err[1] = -0.1 is negative"}},
      {four, {{.x = {0, 4}, .y = {1, 2}}}, {"x[1] = 4 is outside the 4 categories (positions 0 to 3)"}},
      {four, {{.x = {-0.6}, .y = {1}}}, {"x[0] = -0.6 is outside"}},
      {upside, {{.x = {0}, .y = {1}}}, {"y_min 1 is not below y_max 0"}}};
  for (const Case& c : cases)
    expect_refused([&] { pipeline::write_chart_png(path.string(), c.chart, c.series); }, path, c.words);
  // The geometry refuses the same input, naming the chart instead of a file.
  const std::vector<Series> outside{{.x = {0, 4}, .y = {1, 2}}};
  expect_error([&] { pipeline::chart_area(four, outside); }, {"chart: series 0", "outside the 4 categories"});
}

BOOST_AUTO_TEST_CASE(boxplot_draws_median_whiskers_and_outliers) {
  TempDir tmp;
  const fs::path path = tmp.path / "box.png";
  // 1..9 with 30 and 31: quartiles 3.5 and 8.5 (numpy's linear percentile), median 6, upper fence
  // 8.5 + 1.5 * 5 = 16, so the whisker ends at 9 and 30, 31 are outliers.
  const std::vector<BoxGroup> groups{{"head normal", {31, 1, 2, 3, 4, 5, 6, 7, 8, 9, 30}, 0},
                                     {"head abnormal", {10, 12, 14, 16, 18}, 1}};
  if (!have_opencv())
    return expect_error([&] { pipeline::write_boxplot_png(path.string(), "t", "y", groups); },
                        {path.string(), "MORPHOKD_WITH_OPENCV=ON"});
  pipeline::write_boxplot_png(path.string(), "Total loss", "loss", groups);
  const PlotArea a = pipeline::boxplot_area(groups);
  const Picture p = read_picture(path);
  BOOST_REQUIRE((p.width == a.width && p.height == a.height));
  const Rgb blue = pipeline::series_colour(0), orange = pipeline::series_colour(1);
  // Down the middle of each box: the black median line where the mapping puts the median.
  for (const auto& [g, q1, median, q3] : {std::tuple{0, 3.5, 6.0, 8.5}, std::tuple{1, 12.0, 14.0, 16.0}}) {
    BOOST_TEST_CONTEXT("group " << g) {
      const int c = static_cast<int>(std::lround(a.column(g)));
      double sum = 0;
      int n = 0;
      for (int y = static_cast<int>(a.row(q3)) + 2; y <= static_cast<int>(a.row(q1)) - 2; ++y)
        if (tinted(p.at(c, y), kBlackRgb)) sum += y, ++n;
      BOOST_REQUIRE(n > 0);
      BOOST_TEST(std::fabs(sum / n - a.row(median)) <= 2.0,
                 "median drawn at row " << sum / n << ", expected " << a.row(median));
      // The box edges at the quartiles, in the group's colour.
      const Rgb colour = g == 0 ? blue : orange;
      BOOST_TEST(count_near(p, a, g, q1, colour, 1) > 0);
      BOOST_TEST(count_near(p, a, g, q3, colour, 1) > 0);
    }
  }
  // Outliers as rings: colour around the value, hollow in the middle; whisker cap at 9, nothing between 9 and 30.
  for (double v : {30.0, 31.0}) BOOST_TEST(count_near(p, a, 0, v, blue, 4) >= 6, "outlier " << v);
  BOOST_TEST(!tinted(p.at(static_cast<int>(std::lround(a.column(0))), static_cast<int>(std::lround(a.row(30)))), blue));
  BOOST_TEST(count_near(p, a, 0, 9, blue, 1) > 0);
  BOOST_TEST(count_near(p, a, 0, 20, blue, 4) == 0);
  // The second group: no outliers, whiskers to 10 and 18.
  BOOST_TEST(count_near(p, a, 1, 10, orange, 1) > 0);
  BOOST_TEST(count_near(p, a, 1, 18, orange, 1) > 0);
  BOOST_TEST(count_near(p, a, 1, 21, orange, 4) == 0);
}

BOOST_AUTO_TEST_CASE(boxplot_errors_name_the_file_and_write_nothing) {
  TempDir tmp;
  const fs::path path = tmp.path / "bad_box.png";
  const auto write = [&](const std::vector<BoxGroup>& groups) {
    pipeline::write_boxplot_png(path.string(), "t", "y", groups);
  };
  if (!have_opencv()) return expect_refused([&] { write({{"a", {1}}}); }, path, {"MORPHOKD_WITH_OPENCV=ON"});
  expect_refused([&] { write({}); }, path, {"at least one group"});
  const std::vector<BoxGroup> empty_group{{"head normal", {1, 2}}, {"head abnormal", {}}};
  expect_refused([&] { write(empty_group); }, path, {"group 1 'head abnormal' has no values"});
  expect_refused([&] { write({{"tail normal", {1, NAN}}}); }, path, {"group 0 'tail normal'", "value 1 is not finite"});
  expect_error([&] { pipeline::boxplot_area({}); }, {"box plot", "at least one group"});
}

BOOST_AUTO_TEST_SUITE_END()
