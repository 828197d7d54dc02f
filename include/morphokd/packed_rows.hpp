// A tensor's rows (its first dimension) kept without their zeros: for maps after ReLU and
// max-pooling, a quarter to half zeros with random weights and more with trained ones. A bit
// per value marks the stored ones; unpacking gives back every bit (-0.0 is stored, not dropped).
// Read only once made; copies share the packed data, like Tensor handles.
#pragma once
#include <cstddef>
#include <memory>

#include "morphokd/tensor.hpp"

namespace morphokd {

class PackedRows {
 public:
  PackedRows() = default;
  explicit PackedRows(const Tensor& t);  // t: [n, ...], contiguous

  const Shape& shape() const;  // the packed tensor's
  Index row_size() const;
  // Row `row` into out[0, row_size()).
  void unpack(Index row, float* out) const;
  // Rows [begin, end) into `out`, made [end - begin, ...] unless it already is.
  void unpack(Index begin, Index end, Tensor& out) const;
  std::size_t bytes() const;  // held in memory
  bool shares(const PackedRows& o) const { return d_ == o.d_; }

 private:
  struct Data;
  std::shared_ptr<const Data> d_;
};

}  // namespace morphokd
