#include "morphokd/parallel.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "morphokd/error.hpp"

namespace morphokd {

namespace {
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::vector<std::byte> allgather(std::span<const std::byte> mine) override { return {mine.begin(), mine.end()}; }
};

Communicator& single_process() {
  static SingleProcess single;
  return single;
}

Communicator*& world_slot() {
  static Communicator* current = &single_process();
  return current;
}

bool split = false;

template <class T>
void ordered_sum(const T* rows, Index count, Index width, T* out) {
#pragma omp parallel for schedule(static)
  for (Index j = 0; j < width; ++j) {
    T s = count > 0 ? rows[j] : T(0);
    for (Index r = 1; r < count; ++r) s += rows[r * width + j];
    out[j] = s;
  }
}

// Every process's values of type T, concatenated in rank order.
template <class T>
std::vector<T> gather_values(std::span<const T> mine) {
  const std::vector<std::byte> all = world().allgather(std::as_bytes(mine));
  check(all.size() % sizeof(T) == 0, "gather: processes sent values of another type");
  std::vector<T> out(all.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), all.data(), all.size());
  return out;
}

template <class T>
void sum_rows_impl(const T* rows, Index count, Index width, T* out) {
  if (!split || world().size() == 1) return ordered_sum(rows, count, width, out);
  const std::vector<T> gathered = gather_values(std::span<const T>(rows, static_cast<std::size_t>(count * width)));
  check(gathered.size() % static_cast<std::size_t>(width) == 0, "sum_rows: processes sent rows of another width");
  ordered_sum(gathered.data(), static_cast<Index>(gathered.size()) / width, width, out);
}
}  // namespace

Communicator& world() { return *world_slot(); }

void set_world(Communicator* c) { world_slot() = c ? c : &single_process(); }

int first_rank_differing(std::span<const std::byte> mine) {
  Communicator& w = world();
  if (w.size() == 1) return -1;
  const std::uint64_t length = mine.size();
  const std::vector<std::byte> lengths = w.allgather(std::as_bytes(std::span<const std::uint64_t>(&length, 1)));
  const std::vector<std::byte> all = w.allgather(mine);
  std::vector<std::uint64_t> len(static_cast<std::size_t>(w.size()));
  std::memcpy(len.data(), lengths.data(), lengths.size());
  std::size_t at = len[0];
  for (std::size_t r = 1; r < len.size(); ++r) {
    if (len[r] != len[0] || !std::equal(all.begin() + static_cast<std::ptrdiff_t>(at), all.begin() + static_cast<std::ptrdiff_t>(at + len[r]), all.begin()))
      return static_cast<int>(r);
    at += len[r];
  }
  return -1;
}

Index batch_images(Index local) {
  const double mine = static_cast<double>(local);
  double all = 0;
  sum_rows(&mine, 1, 1, &all);
  return static_cast<Index>(all);
}

std::vector<double> gather_all(std::span<const double> mine) { return gather_values(mine); }

Shard shard_of(Index n, int rank, int size) {
  check(size >= 1 && rank >= 0 && rank < size, "shard_of: rank outside the world");
  const Index groups = (n + kBatchGroup - 1) / kBatchGroup, base = groups / size, extra = groups % size;
  const auto r = static_cast<Index>(rank);
  const Index first = r * base + std::min(r, extra), count = base + (r < extra ? 1 : 0);
  return {std::min(n, first * kBatchGroup), std::min(n, (first + count) * kBatchGroup)};
}

SplitBatch::SplitBatch() : saved_(split) { split = true; }
SplitBatch::~SplitBatch() { split = saved_; }

void sum_rows(const float* rows, Index count, Index width, float* out) { sum_rows_impl(rows, count, width, out); }
void sum_rows(const double* rows, Index count, Index width, double* out) { sum_rows_impl(rows, count, width, out); }

}  // namespace morphokd
