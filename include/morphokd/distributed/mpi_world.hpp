// The MPI processes of `mpirun -np N morphokd ...` as morphokd's Communicator (parallel.hpp).
// A separate library, morphokd_mpi, so the core builds and links without MPI.
#pragma once
#include <cstddef>
#include <span>
#include <vector>

#include "morphokd/parallel.hpp"

namespace morphokd {

class MpiWorld final : public Communicator {
 public:
  // MPI_Init_thread (funneled: only the main thread calls MPI; OpenMP threads never do).
  MpiWorld(int& argc, char**& argv);
  ~MpiWorld() override;  // MPI_Finalize
  MpiWorld(const MpiWorld&) = delete;
  MpiWorld& operator=(const MpiWorld&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::vector<std::byte> allgather(std::span<const std::byte> mine) override;
  double comm_seconds() const override { return seconds_; }
  // Ends every process of the job (after an error on this one), so none waits forever.
  [[noreturn]] void abort(int code);

 private:
  int rank_ = 0, size_ = 1;
  double seconds_ = 0;
};

}  // namespace morphokd
