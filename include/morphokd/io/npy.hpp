// NumPy .npy (format versions 1.0, 2.0, 3.0), strict: anything that is not exactly a
// little-endian, C-ordered array of a supported dtype whose data fills the rest of the
// file is rejected with an Error that names the file and the rule broken.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "morphokd/tensor.hpp"

namespace morphokd {

enum class NpyDType { f32, f64, u8, i64 };

struct NpyArray {
  NpyDType dtype = NpyDType::f32;
  std::vector<Index> shape;
  std::vector<std::byte> data;  // little-endian, C order
};

const char* npy_dtype_name(NpyDType t);
// `name` is used in error messages (the file path).
NpyArray parse_npy(std::span<const std::byte> bytes, const std::string& name);
NpyArray read_npy_array(const std::string& path);

// float32 as stored; float64 and uint8 are converted to float32 (values unchanged, no
// scaling); `converted_from`, if given, receives the stored dtype.
Tensor read_npy(const std::string& path, NpyDType* converted_from = nullptr);
std::vector<std::byte> encode_npy(const Tensor& t);
void write_npy(const std::string& path, const Tensor& t);

}  // namespace morphokd
