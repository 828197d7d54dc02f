#include "morphokd/data/images.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "morphokd/data/mhsma.hpp"
#include "morphokd/error.hpp"
#include "morphokd/io/file.hpp"
#include "morphokd_build_config.hpp"

#if MORPHOKD_HAS_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace morphokd::data {

namespace fs = std::filesystem;

namespace {

#if MORPHOKD_HAS_OPENCV
constexpr int kSide = 64;
// A cell crop is far smaller; the cap keeps a tiny file that declares a huge image from
// costing gigabytes (4096 x 4096 x 16 bit is 32 MB).
constexpr std::uint64_t kMaxSide = 4096;

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".tif" || ext == ".tiff" || ext == ".bmp";
}

// Width and height from the header of a PNG, JPEG, TIFF or BMP file, read before decoding so
// that a small file declaring a huge image is refused before OpenCV allocates it; {0, 0} when
// the bytes are none of these formats or the header is cut short.
struct Header {
  std::uint64_t width = 0, height = 0;
};

class Bytes {
 public:
  explicit Bytes(std::span<const std::byte> b) : b_(b) {}
  std::size_t size() const { return b_.size(); }
  // Unsigned integer of n bytes at `at`, little- or big-endian; 0 past the end.
  std::uint64_t uint(std::size_t at, int n, bool little) const {
    if (at > b_.size() || b_.size() - at < static_cast<std::size_t>(n)) return 0;
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) {
      const auto byte = static_cast<std::uint64_t>(b_[at + static_cast<std::size_t>(little ? n - 1 - i : i)]);
      v = v << 8 | byte;
    }
    return v;
  }
  bool starts(std::initializer_list<unsigned char> sig) const {
    if (b_.size() < sig.size()) return false;
    std::size_t i = 0;
    for (unsigned char c : sig)
      if (static_cast<unsigned char>(b_[i++]) != c) return false;
    return true;
  }

 private:
  std::span<const std::byte> b_;
};

Header jpeg_header(const Bytes& b) {
  std::size_t at = 2;
  while (at + 4 <= b.size()) {
    if (b.uint(at, 1, false) != 0xff) return {};
    const auto marker = b.uint(at + 1, 1, false);
    if (marker == 0xff) {  // fill byte
      ++at;
      continue;
    }
    const bool sof = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (sof) return {b.uint(at + 7, 2, false), b.uint(at + 5, 2, false)};
    if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {  // markers without a length
      at += 2;
      continue;
    }
    at += 2 + b.uint(at + 2, 2, false);
  }
  return {};
}

Header tiff_header(const Bytes& b, bool little) {
  const std::uint64_t ifd = b.uint(4, 4, little), entries = b.uint(ifd, 2, little);
  Header h;
  for (std::uint64_t e = 0; e < entries; ++e) {
    const std::size_t at = ifd + 2 + 12 * e;
    const auto tag = b.uint(at, 2, little), type = b.uint(at + 2, 2, little);
    const std::uint64_t value = type == 3 ? b.uint(at + 8, 2, little) : type == 4 ? b.uint(at + 8, 4, little) : 0;
    if (tag == 256) h.width = value;
    if (tag == 257) h.height = value;
  }
  return h;
}

Header image_header(std::span<const std::byte> bytes) {
  const Bytes b(bytes);
  if (b.starts({0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'})) return {b.uint(16, 4, false), b.uint(20, 4, false)};
  if (b.starts({0xff, 0xd8, 0xff})) return jpeg_header(b);
  if (b.starts({'I', 'I', '*', 0})) return tiff_header(b, true);
  if (b.starts({'M', 'M', 0, '*'})) return tiff_header(b, false);
  if (b.starts({'B', 'M'})) {
    if (b.uint(14, 4, true) == 12) return {b.uint(18, 2, true), b.uint(20, 2, true)};  // OS/2 header
    const auto height = static_cast<std::int32_t>(b.uint(22, 4, true));  // negative: rows top-down
    return {b.uint(18, 4, true), static_cast<std::uint64_t>(height < 0 ? -static_cast<std::int64_t>(height) : height)};
  }
  return {};
}

// Pixel / max as one correctly rounded division, so full scale is exactly 1.0f.
template <typename T>
void to_unit_float(const cv::Mat& src, cv::Mat& dst, float max) {
  for (int y = 0; y < src.rows; ++y) {
    const T* s = src.ptr<T>(y);
    float* d = dst.ptr<float>(y);
    for (int x = 0; x < src.cols; ++x) d[x] = static_cast<float>(s[x]) / max;
  }
}

#endif

}  // namespace

void decode_cell(std::span<const std::byte> bytes, const std::string& name, std::span<float> out) {
#if MORPHOKD_HAS_OPENCV
  check(out.size() == std::size_t{kSide} * kSide, name + ": a cell slot holds 64x64 values");
  check(bytes.size() < std::size_t{1} << 31, name + ": image file larger than 2 GB");
  const Header h = image_header(bytes);
  if (h.width == 0 || h.height == 0) fail(name + ": not a PNG, JPEG, TIFF or BMP image (or its header is cut short)");
  if (h.width > kMaxSide || h.height > kMaxSide)
    fail(name + ": image of " + std::to_string(h.width) + " x " + std::to_string(h.height) + " pixels; a cell image may have at most " +
         std::to_string(kMaxSide) + " per side");
  // imdecode takes a non-const Mat header but only reads it.
  const cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, const_cast<std::byte*>(bytes.data()));
  cv::Mat img;
  try {
    img = cv::imdecode(buf, cv::IMREAD_GRAYSCALE | cv::IMREAD_ANYDEPTH);
  } catch (const cv::Exception& e) {  // e.g. a header claiming more pixels than OpenCV's limit
    fail(name + ": cannot decode image (" + quote(e.err) + ")");
  }
  if (img.empty()) fail(name + ": cannot decode image");
  const int side = std::min(img.rows, img.cols);
  const cv::Mat square = img(cv::Rect((img.cols - side) / 2, (img.rows - side) / 2, side, side));

  cv::Mat dst(kSide, kSide, CV_32F, out.data());
  cv::Mat unit = side == kSide ? dst : cv::Mat(side, side, CV_32F);
  switch (img.depth()) {
    case CV_8U: to_unit_float<std::uint8_t>(square, unit, 255.0f); break;
    case CV_16U: to_unit_float<std::uint16_t>(square, unit, 65535.0f); break;
    default: fail(name + ": unsupported pixel depth (expected 8 or 16 bit)");
  }
  // Resizing the float values keeps the precision the 8-bit round trip would lose.
  if (side != kSide) cv::resize(unit, dst, dst.size(), 0, 0, side > kSide ? cv::INTER_AREA : cv::INTER_LINEAR);
#else
  (void)bytes;
  (void)out;
  fail(name + ": reading images needs a build with MORPHOKD_WITH_OPENCV=ON");
#endif
}

ImageFolder load_image_folder(const std::string& dir) {
#if MORPHOKD_HAS_OPENCV
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir + ": no such folder");
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && is_image_file(entry.path())) files.push_back(entry.path());
  if (files.empty()) fail(dir + ": no PNG/JPEG/TIFF/BMP images");
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });

  ImageFolder folder;
  const auto n = static_cast<Index>(files.size());
  folder.cells = Tensor::empty({n, 1, kSide, kSide});
  for (Index i = 0; i < n; ++i) {
    const fs::path& p = files[static_cast<std::size_t>(i)];
    decode_cell(read_file(p.string()), p.string(),
                std::span<float>(folder.cells.data() + i * kSide * kSide, std::size_t{kSide} * kSide));
    folder.names.push_back(p.filename().string());
  }
  return folder;
#else
  fail(dir + ": reading image folders needs a build with MORPHOKD_WITH_OPENCV=ON");
#endif
}

ImageFolder load_cells(const std::string& npy_or_folder) {
  if (fs::is_directory(npy_or_folder)) return load_image_folder(npy_or_folder);
  return {load_cells_npy(npy_or_folder), {}};
}

}  // namespace morphokd::data
