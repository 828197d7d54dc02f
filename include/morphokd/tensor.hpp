// The one tensor type: float32, row-major (NCHW for images), 64-byte aligned storage,
// shape + strides. Copies of a Tensor share storage (a handle, like a view); clone()
// copies the data. Views (reshape, batch slices) never allocate.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <span>
#include <string>

namespace morphokd {

using Index = std::int64_t;

class Shape {
 public:
  static constexpr int kMaxRank = 6;
  Shape() = default;
  Shape(std::initializer_list<Index> dims);
  explicit Shape(std::span<const Index> dims);

  int rank() const { return rank_; }
  Index operator[](int i) const { return dims_[static_cast<std::size_t>(i)]; }
  Index numel() const;
  std::span<const Index> dims() const { return {dims_.data(), static_cast<std::size_t>(rank_)}; }
  std::string str() const;  // "[2, 3, 64, 64]"
  Shape with_batch(Index n) const;  // the same with dimension 0 set to n
  bool operator==(const Shape& o) const;

 private:
  std::array<Index, kMaxRank> dims_{};
  int rank_ = 0;
};

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(const Shape& shape);  // uninitialised
  // Uninitialised too; a large one in pages of its own, returned to the kernel when freed
  // (Linux; 2 MB aligned, transparent huge pages asked for). For planned buffers that are
  // freed and planned again: glibc keeps freed blocks below its adaptive threshold (up to
  // 32 MB), so a training plan and the modules' buffers taking turns each epoch both stayed
  // resident (+90 MB), and faulting 220 MB in 4 KB pages took 0.4 s in a virtual machine.
  // Not for per-call temporaries: those the heap hands back without faults.
  static Tensor empty_pages(const Shape& shape);
  static Tensor zeros(const Shape& shape);
  static Tensor full(const Shape& shape, float value);
  // Non-owning view of caller memory; the caller keeps it alive.
  static Tensor wrap(float* data, const Shape& shape);

  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  Index dim(int i) const { return shape_[i]; }
  Index numel() const { return shape_.numel(); }
  Index stride(int i) const { return strides_[static_cast<std::size_t>(i)]; }
  bool is_contiguous() const;

  float* data() { return data_; }
  const float* data() const { return data_; }
  std::span<float> span();  // contiguous only
  std::span<const float> span() const;

  // Same storage, new shape (contiguous tensors, equal numel).
  Tensor reshape(const Shape& shape) const;
  // Rows [begin, end) of dimension 0, sharing storage.
  Tensor slice(Index begin, Index end) const;
  Tensor clone() const;
  void copy_from(const Tensor& src);  // shapes must match
  void add_from(const Tensor& src);   // this += src elementwise; shapes must match
  void fill(float value);

 private:
  static Tensor adopt(std::shared_ptr<float> storage, const Shape& shape);
  std::shared_ptr<float> storage_;  // null for wrapped memory
  float* data_ = nullptr;
  Shape shape_;
  std::array<Index, Shape::kMaxRank> strides_{};
  void set_contiguous_strides();
};

inline std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

// A buffer planned once: `t` is kept when it already has `shape` (contents untouched), else
// it becomes a new uninitialised tensor of `shape`.
void fit_shape(Tensor& t, const Shape& shape);
// A flat buffer that only grows: `t` is kept when it holds at least `count` floats, else it
// becomes a new Tensor::empty_pages({count}). Callers view it with Tensor::wrap at each use's
// shape.
void fit_capacity(Tensor& t, Index count);

// Checks used at every op and module boundary; the message names `what`.
void check_shape(const Tensor& t, const Shape& expected, const char* what);
void check_rank(const Tensor& t, int rank, const char* what);
// First non-finite element, or -1.
Index find_non_finite(std::span<const float> values);

}  // namespace morphokd
