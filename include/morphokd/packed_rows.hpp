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
  struct Data;

 public:
  PackedRows() = default;
  explicit PackedRows(const Tensor& t);  // t: [n, ...], contiguous

  // The rows a batch at a time, as they are computed: the whole tensor is never held unpacked.
  class Builder {
   public:
    explicit Builder(const Shape& shape);  // the whole tensor's, [n, ...]
    void add(const Tensor& rows);          // the next rows, [k, ...], contiguous
    PackedRows finish();                   // once all n rows are in
   private:
    std::shared_ptr<Data> d_;
    Index rows_ = 0;
  };

  const Shape& shape() const;  // the packed tensor's
  Index row_size() const;
  // Row `row` into out[0, row_size()).
  void unpack(Index row, float* out) const;
  // Rows [begin, end) into `out`, made [end - begin, ...] unless it already is.
  void unpack(Index begin, Index end, Tensor& out) const;
  std::size_t bytes() const;  // held in memory
  bool shares(const PackedRows& o) const { return d_ == o.d_; }

 private:
  std::shared_ptr<const Data> d_;
};

}  // namespace morphokd
