// Data parallelism across processes (MPI ranks, or anything else that can all-gather bytes),
// kept exact: a global batch is cut into fixed groups of kBatchGroup images, each process
// takes a contiguous run of whole groups, and every sum over the batch's images is formed
// from per-group (or per-image) partial rows summed in global row order. One process sums the
// same rows in the same order, so N processes give the bits one process gives.
#pragma once
#include <cstddef>
#include <span>
#include <vector>

#include "morphokd/tensor.hpp"

namespace morphokd {

// Images per reduction group: the granularity of shards and of batch sums.
constexpr Index kBatchGroup = 4;

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Every process's `mine` (lengths may differ), concatenated in rank order, on every process.
  virtual std::vector<std::byte> allgather(std::span<const std::byte> mine) = 0;
  // Wall time spent in allgather so far (reported per training step).
  virtual double comm_seconds() const { return 0; }
};

// The processes this one works with: by default itself alone (rank 0 of 1). Apps built with
// MPI install theirs; the pointer is not owned and must outlive its use.
Communicator& world();
void set_world(Communicator* c);  // nullptr: back to the single process

// The first rank whose `mine` differs from rank 0's, or -1 when all agree (every rank learns it).
int first_rank_differing(std::span<const std::byte> mine);

// Images in the batch: `local`, or inside a SplitBatch the sum over every process.
Index batch_images(Index local);

// Every process's values, concatenated in rank order, on every process.
std::vector<double> gather_all(std::span<const double> mine);

// Images [begin, end) of a batch of n that `rank` of `size` computes: whole groups, split as
// evenly as the group count allows (earlier ranks take the extra groups; a rank may get none).
struct Shard {
  Index begin = 0, end = 0;
  Index size() const { return end - begin; }
};
Shard shard_of(Index n, int rank, int size);

// While a SplitBatch is alive, sum_rows adds the rows of every process (the batch being
// trained is split across the world); otherwise a process's rows are the whole batch.
class SplitBatch {
 public:
  SplitBatch();
  ~SplitBatch();
  SplitBatch(const SplitBatch&) = delete;
  SplitBatch& operator=(const SplitBatch&) = delete;

 private:
  bool saved_;
};

// out[j] = ((rows[0][j] + rows[1][j]) + rows[2][j]) + ... over this process's `count` rows of
// `width` values or, inside a SplitBatch, over all processes' rows in rank order.
void sum_rows(const float* rows, Index count, Index width, float* out);
void sum_rows(const double* rows, Index count, Index width, double* out);

}  // namespace morphokd
