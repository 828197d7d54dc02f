#include "morphokd/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <sstream>

#include "morphokd/error.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace morphokd {

namespace {
constexpr std::size_t kAlignment = 64;  // one cache line; what AVX-512 loads want

std::shared_ptr<float> allocate(Index n) {
  const std::size_t bytes = static_cast<std::size_t>(std::max<Index>(n, 1)) * sizeof(float);
  const std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  return std::shared_ptr<float>(static_cast<float*>(p), [](float* q) { std::free(q); });
}

// Pages of its own from the kernel for a large buffer, 2 MB aligned with transparent huge
// pages asked for, unmapped when freed; a small one from the heap.
std::shared_ptr<float> allocate_pages(Index n) {
#if defined(__linux__)
  constexpr std::size_t kHugePage = std::size_t{2} << 20;
  const std::size_t bytes = static_cast<std::size_t>(std::max<Index>(n, 1)) * sizeof(float);
  if (bytes < 2 * kHugePage) return allocate(n);
  const std::size_t size = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* raw = ::mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) ::munmap(raw, aligned - start);  // the slack either side of the aligned part
  ::munmap(reinterpret_cast<void*>(aligned + size), start + kHugePage - aligned);  // at least a page: start is page-aligned
  ::madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);  // advice: without it, 4 KB pages
  return std::shared_ptr<float>(reinterpret_cast<float*>(aligned), [size](float* q) { ::munmap(q, size); });
#else
  return allocate(n);
#endif
}
}  // namespace

Shape::Shape(std::initializer_list<Index> dims) : Shape(std::span<const Index>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const Index> dims) {
  check(dims.size() <= static_cast<std::size_t>(kMaxRank), "tensor rank above " + std::to_string(kMaxRank));
  for (std::size_t i = 0; i < dims.size(); ++i) {
    check(dims[i] >= 0, "negative tensor dimension");
    dims_[i] = dims[i];
  }
  rank_ = static_cast<int>(dims.size());
}

Index Shape::numel() const {
  Index n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
  return n;
}

Shape Shape::with_batch(Index n) const {
  Shape s = *this;
  s.dims_[0] = n;
  return s;
}

std::string Shape::str() const {
  std::ostringstream s;
  s << '[';
  for (int i = 0; i < rank_; ++i) s << (i ? ", " : "") << dims_[static_cast<std::size_t>(i)];
  s << ']';
  return s.str();
}

bool Shape::operator==(const Shape& o) const {
  return rank_ == o.rank_ && std::equal(dims_.begin(), dims_.begin() + rank_, o.dims_.begin());
}

void Tensor::set_contiguous_strides() {
  Index s = 1;
  for (int i = shape_.rank() - 1; i >= 0; --i) {
    strides_[static_cast<std::size_t>(i)] = s;
    s *= shape_[i];
  }
}

Tensor Tensor::empty(const Shape& shape) { return adopt(allocate(shape.numel()), shape); }

Tensor Tensor::empty_pages(const Shape& shape) { return adopt(allocate_pages(shape.numel()), shape); }

Tensor Tensor::adopt(std::shared_ptr<float> storage, const Shape& shape) {
  Tensor t;
  t.storage_ = std::move(storage);
  t.data_ = t.storage_.get();
  t.shape_ = shape;
  t.set_contiguous_strides();
  return t;
}

Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.0f); }

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::wrap(float* data, const Shape& shape) {
  Tensor t;
  t.data_ = data;
  t.shape_ = shape;
  t.set_contiguous_strides();
  return t;
}

bool Tensor::is_contiguous() const {
  Index s = 1;
  for (int i = rank() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[static_cast<std::size_t>(i)] != s) return false;
    s *= shape_[i];
  }
  return true;
}

std::span<float> Tensor::span() {
  check(is_contiguous(), "span() of a non-contiguous tensor");
  return {data_, static_cast<std::size_t>(numel())};
}

std::span<const float> Tensor::span() const {
  check(is_contiguous(), "span() of a non-contiguous tensor");
  return {data_, static_cast<std::size_t>(numel())};
}

Tensor Tensor::reshape(const Shape& shape) const {
  check(is_contiguous(), "reshape of a non-contiguous tensor");
  check(shape.numel() == numel(), "cannot reshape " + shape_.str() + " to " + shape.str());
  Tensor t = *this;
  t.shape_ = shape;
  t.set_contiguous_strides();
  return t;
}

Tensor Tensor::slice(Index begin, Index end) const {
  check(rank() >= 1 && 0 <= begin && begin <= end && end <= shape_[0],
        "slice [" + std::to_string(begin) + ", " + std::to_string(end) + ") out of " + shape_.str());
  Tensor t = *this;
  std::array<Index, Shape::kMaxRank> d{};
  for (int i = 0; i < rank(); ++i) d[static_cast<std::size_t>(i)] = shape_[i];
  d[0] = end - begin;
  t.shape_ = Shape(std::span<const Index>(d.data(), static_cast<std::size_t>(rank())));
  t.data_ = data_ + begin * strides_[0];
  return t;
}

void fit_shape(Tensor& t, const Shape& shape) {
  if (!(t.shape() == shape)) t = Tensor::empty(shape);
}

void fit_capacity(Tensor& t, Index count) {
  if (t.numel() < count) t = Tensor::empty_pages({count});
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_);
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  check_shape(src, shape_, "copy source");
  check(is_contiguous() && src.is_contiguous(), "copy of a non-contiguous tensor");
  std::copy(src.data_, src.data_ + numel(), data_);
}

void Tensor::add_from(const Tensor& src) {
  check_shape(src, shape_, "addend");
  check(is_contiguous() && src.is_contiguous(), "sum with a non-contiguous tensor");
  const Index n = numel();  // once: numel() is not inlined, and a call per element stops vectorising
  for (Index i = 0; i < n; ++i) data_[i] += src.data_[i];
}

void Tensor::fill(float value) {
  check(is_contiguous(), "fill of a non-contiguous tensor");
  std::fill(data_, data_ + numel(), value);
}

void check_shape(const Tensor& t, const Shape& expected, const char* what) {
  if (!(t.shape() == expected))
    fail(std::string(what) + ": expected shape " + expected.str() + ", got " + t.shape().str());
}

void check_rank(const Tensor& t, int rank, const char* what) {
  if (t.rank() != rank)
    fail(std::string(what) + ": expected rank " + std::to_string(rank) + ", got shape " + t.shape().str());
}

Index find_non_finite(std::span<const float> values) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i])) return static_cast<Index>(i);
  return -1;
}

}  // namespace morphokd
