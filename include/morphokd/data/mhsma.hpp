// MHSMA (Javadi & Mirroshandel 2019): x_64_{split}.npy uint8 N x 64 x 64 gray cells and
// y_{part}_{split}.npy uint8 N labels, 0 = normal, 1 = abnormal.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "morphokd/io/npy.hpp"
#include "morphokd/tensor.hpp"

namespace morphokd::data {

// head, vacuole, acrosome, tail; anything else is an Error naming --part.
std::string check_part(const std::string& part);
// MHSMA's parts in the paper's order: head, vacuole, acrosome, tail.
const std::vector<std::string>& parts();
std::string check_split(const std::string& split);  // train, valid, test

struct LabelledCells {
  Tensor cells;                       // [N, 1, 64, 64], x / 255
  std::vector<std::uint8_t> labels;   // N, 0 normal, 1 abnormal
  std::string x_path, y_path;
};

// Errors name the file: missing, malformed, wrong dtype or shape, labels other than 0/1,
// a length mismatch between images and labels.
LabelledCells load_mhsma(const std::string& dir, const std::string& split, const std::string& part);

// Cells for scoring: N x 64 x 64 (or N x 1 x 64 x 64) as uint8 0-255 (divided by 255) or
// float32/float64 in [0, 1]. Rejects other shapes, NaN/Inf and float values outside [0, 1].
Tensor load_cells_npy(const std::string& path);
// The same on a parsed array; `name` for errors (load_cells_npy and load_mhsma use it).
Tensor cells_from_npy(const NpyArray& a, const std::string& name);

std::vector<std::int64_t> rows_with_label(const std::vector<std::uint8_t>& labels, std::uint8_t label);
// cells[rows] -> [rows.size(), 1, H, W]
Tensor gather(const Tensor& cells, const std::vector<std::int64_t>& rows);

}  // namespace morphokd::data
