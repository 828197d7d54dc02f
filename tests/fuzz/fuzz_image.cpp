// Image loader: one encoded file (PNG, JPEG, TIFF, BMP, whatever OpenCV recognises) into a cell.
#include <vector>

#include "fuzz_support.hpp"
#include "morphokd/data/images.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace morphokd;
  std::vector<float> cell(64 * 64);
  fuzz::expect_accept_or_error("fuzz.png", [&] { data::decode_cell(fuzz::as_bytes(data, size), "fuzz.png", cell); });
  return 0;
}
