#include "morphokd/distributed/mpi_world.hpp"

#include <mpi.h>

#include <cstdint>
#include <cstdlib>
#include <limits>

#include "morphokd/error.hpp"

namespace morphokd {

namespace {
void check_mpi(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(rc, text, &length);
    fail(std::string("MPI: ") + what + ": " + std::string(text, static_cast<std::size_t>(length)));
  }
}
}  // namespace

MpiWorld::MpiWorld(int& argc, char**& argv) {
  int provided = 0;
  check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  // Errors come back as codes and become one-line Errors, instead of MPI's own abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
}

MpiWorld::~MpiWorld() { MPI_Finalize(); }

std::vector<std::byte> MpiWorld::allgather(std::span<const std::byte> mine) {
  const double start = MPI_Wtime();
  // Lengths first (they may differ), then the bytes. MPI counts are ints: 2 GB per call at most.
  check(mine.size() <= static_cast<std::size_t>(std::numeric_limits<int>::max()), "MPI: a process sends more than 2 GB at once");
  const int count = static_cast<int>(mine.size());
  std::vector<int> counts(static_cast<std::size_t>(size_)), offsets(static_cast<std::size_t>(size_));
  check_mpi(MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
  std::int64_t total = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    check(total <= std::numeric_limits<int>::max(), "MPI: all processes together send more than 2 GB at once");
    offsets[r] = static_cast<int>(total);
    total += counts[r];
  }
  check(total <= std::numeric_limits<int>::max(), "MPI: all processes together send more than 2 GB at once");
  std::vector<std::byte> all(static_cast<std::size_t>(total));
  check_mpi(MPI_Allgatherv(mine.data(), count, MPI_BYTE, all.data(), counts.data(), offsets.data(), MPI_BYTE, MPI_COMM_WORLD),
            "MPI_Allgatherv");
  seconds_ += MPI_Wtime() - start;
  return all;
}

void MpiWorld::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this satisfies [[noreturn]]
}

}  // namespace morphokd
