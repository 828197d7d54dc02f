#include "morphokd/packed_rows.hpp"

#include <bit>
#include <cstdint>
#include <vector>

#include "morphokd/error.hpp"

namespace morphokd {

struct PackedRows::Data {
  Shape shape;
  Index row_size = 0, words = 0;     // words: mask words per row
  std::vector<std::uint64_t> masks;  // [n, words]: bit j of a row set = value j stored
  std::vector<std::size_t> starts;   // [n + 1]: each row's first value in `values`
  std::vector<float> values;         // the stored values, rows in order, one spare at the end
};

namespace {
bool stored(float v) { return std::bit_cast<std::uint32_t>(v) != 0; }  // all but +0.0
}  // namespace

PackedRows::PackedRows(const Tensor& t) {
  check(t.rank() >= 1 && t.is_contiguous(), "PackedRows: the tensor must be contiguous, with rows");
  auto d = std::make_shared<Data>();
  const Index n = t.dim(0), per = n > 0 ? t.numel() / n : 0, words = (per + 63) / 64;
  d->shape = t.shape();
  d->row_size = per;
  d->words = words;
  d->masks.assign(static_cast<std::size_t>(n * words), 0);
  d->starts.assign(static_cast<std::size_t>(n + 1), 0);
#pragma omp parallel for schedule(static)
  for (Index r = 0; r < n; ++r) {
    const float* row = t.data() + r * per;
    std::uint64_t* mask = d->masks.data() + r * words;
    std::size_t count = 0;
    for (Index j = 0; j < per; ++j)
      if (stored(row[j])) {
        mask[j / 64] |= std::uint64_t{1} << (j % 64);
        ++count;
      }
    d->starts[static_cast<std::size_t>(r) + 1] = count;
  }
  for (std::size_t r = 0; r < static_cast<std::size_t>(n); ++r) d->starts[r + 1] += d->starts[r];
  d->values.resize(d->starts.back() + 1);  // the spare lets unpack read one past a row's last value
#pragma omp parallel for schedule(static)
  for (Index r = 0; r < n; ++r) {
    const float* row = t.data() + r * per;
    float* v = d->values.data() + d->starts[static_cast<std::size_t>(r)];
    for (Index j = 0; j < per; ++j)
      if (stored(row[j])) *v++ = row[j];
  }
  d_ = std::move(d);
}

const Shape& PackedRows::shape() const {
  static const Shape none;
  return d_ ? d_->shape : none;
}
Index PackedRows::row_size() const { return d_ ? d_->row_size : 0; }

void PackedRows::unpack(Index row, float* out) const {
  check(d_ && row >= 0 && row < d_->shape[0], "PackedRows: row out of range");
  const std::uint64_t* mask = d_->masks.data() + row * d_->words;
  const float* v = d_->values.data() + d_->starts[static_cast<std::size_t>(row)];
  for (Index j = 0; j < d_->row_size; ++j) {  // branch-free: the values are as often zero as not
    const bool bit = (mask[j / 64] >> (j % 64)) & 1;
    out[j] = bit ? *v : 0.0f;
    v += bit;
  }
}

void PackedRows::unpack(Index begin, Index end, Tensor& out) const {
  check(d_ && 0 <= begin && begin <= end && end <= d_->shape[0], "PackedRows: rows out of range");
  const Shape want = d_->shape.with_batch(end - begin);
  fit_shape(out, want);
#pragma omp parallel for schedule(static)
  for (Index r = begin; r < end; ++r) unpack(r, out.data() + (r - begin) * d_->row_size);
}

std::size_t PackedRows::bytes() const {
  if (!d_) return 0;
  return d_->masks.size() * sizeof(std::uint64_t) + d_->starts.size() * sizeof(std::size_t) + d_->values.size() * sizeof(float);
}

}  // namespace morphokd
