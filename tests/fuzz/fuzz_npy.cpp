// .npy reader: parse_npy, then the cell conversion scoring applies (shape, dtype, NaN/Inf, range).
#include "fuzz_support.hpp"
#include "morphokd/data/mhsma.hpp"
#include "morphokd/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace morphokd;
  fuzz::expect_accept_or_error("fuzz.npy", [&] {
    const NpyArray a = parse_npy(fuzz::as_bytes(data, size), "fuzz.npy");
    data::cells_from_npy(a, "fuzz.npy");
  });
  return 0;
}
