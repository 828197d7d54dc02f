// The OpenCV-backed parts: ONNX import against the torch.onnx fixture (tiny_vgg.*), image
// folders (PNG files encoded here, independently of OpenCV) and augmentation. Built without
// OpenCV, each checks the Error that says so instead.
#define BOOST_TEST_MODULE opencv_io
#include <unistd.h>

#include <array>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <vector>

#include "support.hpp"
#include "morphokd/data/augment.hpp"
#include "morphokd/data/images.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd/models/onnx_import.hpp"
#include "morphokd/models/vgg.hpp"
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
