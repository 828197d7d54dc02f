// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed (zlib reads both):
// big-endian magic 0x0000TTDD (TT = 0x08 unsigned byte, DD = number of dimensions), DD
// big-endian uint32 sizes, then the values. Only unsigned bytes occur in those datasets.
// Debian's dataset-fashion-mnist installs them under /usr/share/datasets/fashion-mnist.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "morphokd/tensor.hpp"

namespace morphokd::data {

struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> values;  // row-major, product(dims) bytes
};

// Errors name the file: missing, not gzip/IDX, wrong magic or type, truncated, trailing bytes.
IdxArray read_idx(const std::string& path);

// A labelled image set: images [N, 1, H, W] in [0, 1], labels 0..classes-1.
struct LabelledImages {
  Tensor images;
  std::vector<std::int64_t> labels;
  int classes = 0;
};

// `prefix`-images-idx3-ubyte[.gz] and `prefix`-labels-idx1-ubyte[.gz] from `dir`
// (prefix "train" or "t10k"); first `limit` items when limit > 0. Errors when the counts differ.
LabelledImages load_idx_dataset(const std::string& dir, const std::string& prefix, std::int64_t limit = 0);

}  // namespace morphokd::data
