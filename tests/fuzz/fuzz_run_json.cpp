// run.json reader (its configuration included): parse_run, as eval/score/verify read a run.
#include "fuzz_support.hpp"
#include "morphokd/pipeline/run.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace morphokd;
  fuzz::expect_accept_or_error("fuzz/run.json", [&] { pipeline::parse_run(fuzz::as_bytes(data, size), "fuzz/run.json"); });
  return 0;
}
