// A folder of cell images (PNG, JPEG, TIFF, BMP) read through OpenCV as grayscale:
// 8-bit images scaled by 1/255, 16-bit by 1/65535. A 64x64 image is used as is; any other
// size is centre-cropped to a square and resized to 64x64 (INTER_AREA when shrinking,
// INTER_LINEAR when enlarging). Files are taken in name order; other files are skipped.
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "morphokd/tensor.hpp"

namespace morphokd::data {

struct ImageFolder {
  Tensor cells;                     // [N, 1, 64, 64], values in [0, 1]
  std::vector<std::string> names;   // file names, same order
};

// Errors (one line, naming the folder or file): missing folder, no images in it, an image
// OpenCV cannot decode. Built without OpenCV: an Error saying so.
ImageFolder load_image_folder(const std::string& dir);

// One encoded image (file bytes) into a 64x64 slot as above; Error naming `name` when it
// is not PNG, JPEG, TIFF or BMP by its header, declares more than 4096 pixels per side (checked
// before decoding), does not decode, or has another pixel depth.
void decode_cell(std::span<const std::byte> bytes, const std::string& name, std::span<float> out);

// Cells to score, attack or localize: a folder of images as above, or a .npy as
// load_cells_npy reads it (names then empty).
ImageFolder load_cells(const std::string& npy_or_folder);

}  // namespace morphokd::data
