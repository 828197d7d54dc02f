#include "morphokd/data/mhsma.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "morphokd/error.hpp"
#include "morphokd/io/npy.hpp"

namespace morphokd::data {

const std::vector<std::string>& parts() {
  static const std::vector<std::string> names{"head", "vacuole", "acrosome", "tail"};
  return names;
}

std::string check_part(const std::string& part) {
  if (std::find(parts().begin(), parts().end(), part) != parts().end()) return part;
  fail("--part: unknown part " + quote(part) + " (expected head, vacuole, acrosome or tail)");
}

std::string check_split(const std::string& split) {
  if (split == "train" || split == "valid" || split == "test") return split;
  fail("--split: unknown split " + quote(split) + " (expected train, valid or test)");
}

Tensor cells_from_npy(const NpyArray& a, const std::string& path) {
  const std::size_t r = a.shape.size();
  if (!(r == 3 || (r == 4 && a.shape[1] == 1)))
    fail(path + ": expected N x 64 x 64 cells, got rank " + std::to_string(r));
  const Index n = a.shape[0], h = a.shape[r - 2], w = a.shape[r - 1];
  if (h != 64 || w != 64) fail(path + ": cells must be 64 x 64, got " + std::to_string(h) + " x " + std::to_string(w));
  if (n == 0) fail(path + ": no cells");
  Tensor t = Tensor::empty({n, 1, h, w});
  float* out = t.data();
  const Index count = t.numel();
  if (a.dtype == NpyDType::u8) {
    for (Index i = 0; i < count; ++i) out[i] = static_cast<float>(static_cast<std::uint8_t>(a.data[static_cast<std::size_t>(i)])) / 255.0f;
    return t;
  }
  for (Index i = 0; i < count; ++i) {
    double v;
    if (a.dtype == NpyDType::f32) {
      float f;
      std::memcpy(&f, a.data.data() + 4 * i, 4);
      v = f;
    } else if (a.dtype == NpyDType::f64) {
      std::memcpy(&v, a.data.data() + 8 * i, 8);
    } else {
      fail(path + ": cells must be uint8 (0-255) or float (0-1), got " + npy_dtype_name(a.dtype));
    }
    if (!std::isfinite(v)) fail(path + ": non-finite pixel (NaN or Inf) at flat index " + std::to_string(i));
    if (v < 0.0 || v > 1.0) fail(path + ": float pixel " + std::to_string(v) + " outside [0, 1] at flat index " + std::to_string(i));
    out[i] = static_cast<float>(v);
  }
  return t;
}

Tensor load_cells_npy(const std::string& path) { return cells_from_npy(read_npy_array(path), path); }

LabelledCells load_mhsma(const std::string& dir, const std::string& split, const std::string& part) {
  check_split(split);
  check_part(part);
  if (!std::filesystem::is_directory(dir)) fail(dir + ": no such data folder (run data/fetch_mhsma.sh)");
  LabelledCells out;
  out.x_path = (std::filesystem::path(dir) / ("x_64_" + split + ".npy")).string();
  out.y_path = (std::filesystem::path(dir) / ("y_" + part + "_" + split + ".npy")).string();
  const NpyArray x = read_npy_array(out.x_path);
  if (x.dtype != NpyDType::u8) fail(out.x_path + ": MHSMA images must be uint8, got " + npy_dtype_name(x.dtype));
  out.cells = cells_from_npy(x, out.x_path);
  const NpyArray y = read_npy_array(out.y_path);
  if (y.dtype != NpyDType::u8 || y.shape.size() != 1) fail(out.y_path + ": labels must be a uint8 vector");
  if (y.shape[0] != out.cells.dim(0))
    fail(out.y_path + ": " + std::to_string(y.shape[0]) + " labels for " + std::to_string(out.cells.dim(0)) + " images");
  out.labels.resize(y.data.size());
  for (std::size_t i = 0; i < y.data.size(); ++i) {
    out.labels[i] = static_cast<std::uint8_t>(y.data[i]);
    if (out.labels[i] > 1) fail(out.y_path + ": label " + std::to_string(out.labels[i]) + " at row " + std::to_string(i) + " (expected 0 or 1)");
  }
  return out;
}

std::vector<std::int64_t> rows_with_label(const std::vector<std::uint8_t>& labels, std::uint8_t label) {
  std::vector<std::int64_t> rows;
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] == label) rows.push_back(static_cast<std::int64_t>(i));
  return rows;
}

Tensor gather(const Tensor& cells, const std::vector<std::int64_t>& rows) {
  const Index per = cells.numel() / cells.dim(0);
  Tensor out = Tensor::empty({static_cast<Index>(rows.size()), cells.dim(1), cells.dim(2), cells.dim(3)});
  for (std::size_t i = 0; i < rows.size(); ++i) {
    check(rows[i] >= 0 && rows[i] < cells.dim(0), "gather: row out of range");
    std::memcpy(out.data() + static_cast<Index>(i) * per, cells.data() + rows[i] * per, sizeof(float) * per);
  }
  return out;
}

}  // namespace morphokd::data
