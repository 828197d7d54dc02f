#include "morphokd/data/images.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "morphokd/data/mhsma.hpp"
#include "morphokd/error.hpp"
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

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".tif" || ext == ".tiff" || ext == ".bmp";
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

// One decoded cell into the 64x64 float slot `out`.
void load_cell(const std::string& path, float* out) {
  const cv::Mat img = cv::imread(path, cv::IMREAD_GRAYSCALE | cv::IMREAD_ANYDEPTH);
  if (img.empty()) fail(path + ": cannot decode image");
  const int side = std::min(img.rows, img.cols);
  const cv::Mat square = img(cv::Rect((img.cols - side) / 2, (img.rows - side) / 2, side, side));

  cv::Mat dst(kSide, kSide, CV_32F, out);
  cv::Mat unit = side == kSide ? dst : cv::Mat(side, side, CV_32F);
  switch (img.depth()) {
    case CV_8U: to_unit_float<std::uint8_t>(square, unit, 255.0f); break;
    case CV_16U: to_unit_float<std::uint16_t>(square, unit, 65535.0f); break;
    default: fail(path + ": unsupported pixel depth (expected 8 or 16 bit)");
  }
  // Resizing the float values keeps the precision the 8-bit round trip would lose.
  if (side != kSide) cv::resize(unit, dst, dst.size(), 0, 0, side > kSide ? cv::INTER_AREA : cv::INTER_LINEAR);
}
#endif

}  // namespace

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
    load_cell(p.string(), folder.cells.data() + i * kSide * kSide);
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
