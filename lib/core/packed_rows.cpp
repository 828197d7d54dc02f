#include "morphokd/packed_rows.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <bit>
#include <cstdint>
#include <vector>

#include "morphokd/error.hpp"
#include "packed_rows_unpack.hpp"

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

// Values [begin, n) of a row whose earlier ones are done; v: the first value not yet used.
void unpack_from(const std::uint64_t* mask, const float* v, Index begin, Index n, float* out) {
  for (Index j = begin; j < n; ++j) {  // branch-free: the values are as often zero as not
    const bool bit = (mask[j / 64] >> (j % 64)) & 1;
    out[j] = bit ? *v : 0.0f;
    v += bit;
  }
}
}  // namespace

namespace detail {

void unpack_row_portable(const std::uint64_t* mask, const float* values, Index n, float* out) {
  unpack_from(mask, values, 0, n, out);
}

#if defined(__x86_64__)
// Sixteen values per step: the mask's 16 bits pick how many stored values the expand-load
// reads (no further: it may not touch memory past the row's last value) and where they go.
__attribute__((target("avx512f"))) void unpack_row_avx512(const std::uint64_t* mask, const float* values, Index n,
                                                            float* out) {
  Index j = 0;
  for (; j + 16 <= n; j += 16) {
    const auto bits = static_cast<std::uint16_t>(mask[j / 64] >> (j % 64));
    _mm512_storeu_ps(out + j, _mm512_maskz_expandloadu_ps(bits, values));
    values += std::popcount(bits);
  }
  unpack_from(mask, values, j, n, out);
}
#else  // never chosen: cpu_has_avx512() is false
void unpack_row_avx512(const std::uint64_t* mask, const float* values, Index n, float* out) {
  unpack_from(mask, values, 0, n, out);
}
#endif

}  // namespace detail

PackedRows::Builder::Builder(const Shape& shape) : d_(std::make_shared<Data>()) {
  check(shape.rank() >= 1, "PackedRows: the tensor must have rows");
  const Index n = shape[0], per = n > 0 ? shape.numel() / n : 0, words = (per + 63) / 64;
  d_->shape = shape;
  d_->row_size = per;
  d_->words = words;
  d_->masks.assign(static_cast<std::size_t>(n * words), 0);
  d_->starts.assign(static_cast<std::size_t>(n + 1), 0);
  // Room for every value, reserved not touched: only the pages the stored values fill count.
  d_->values.reserve(static_cast<std::size_t>(n * per + 1));
}

void PackedRows::Builder::add(const Tensor& t) {
  check(d_ && t.rank() == d_->shape.rank() && t.is_contiguous() && t.shape().with_batch(d_->shape[0]) == d_->shape &&
            rows_ + t.dim(0) <= d_->shape[0],
        "PackedRows: rows " + t.shape().str() + " do not continue a packed " + (d_ ? d_->shape.str() : std::string("[]")));
  Data& d = *d_;
  const Index k = t.dim(0), per = d.row_size, words = d.words;
  std::size_t* starts = d.starts.data() + rows_;  // starts[0]: the first new row's, known
#pragma omp parallel for schedule(static)
  for (Index r = 0; r < k; ++r) {
    const float* row = t.data() + r * per;
    std::uint64_t* mask = d.masks.data() + (rows_ + r) * words;
    std::size_t count = 0;
    for (Index j = 0; j < per; ++j)
      if (stored(row[j])) {
        mask[j / 64] |= std::uint64_t{1} << (j % 64);
        ++count;
      }
    starts[r + 1] = count;
  }
  for (Index r = 0; r < k; ++r) starts[r + 1] += starts[r];
  d.values.resize(starts[k]);
#pragma omp parallel for schedule(static)
  for (Index r = 0; r < k; ++r) {
    const float* row = t.data() + r * per;
    float* v = d.values.data() + starts[r];
    for (Index j = 0; j < per; ++j)
      if (stored(row[j])) *v++ = row[j];
  }
  rows_ += k;
}

PackedRows PackedRows::Builder::finish() {
  check(d_ && rows_ == d_->shape[0], "PackedRows: " + std::to_string(rows_) + " rows of " + (d_ ? d_->shape.str() : std::string("[]")) + " added");
  d_->values.push_back(0.0f);  // the spare lets unpack read one past a row's last value
  PackedRows p;
  p.d_ = std::move(d_);
  return p;
}

PackedRows::PackedRows(const Tensor& t) {
  check(t.rank() >= 1 && t.is_contiguous(), "PackedRows: the tensor must be contiguous, with rows");
  Builder b(t.shape());
  b.add(t);
  *this = b.finish();
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
  (detail::cpu_has_avx512() ? detail::unpack_row_avx512 : detail::unpack_row_portable)(mask, v, d_->row_size, out);
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
