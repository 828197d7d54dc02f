#!/usr/bin/env bash
# The whole ctest suite built with AddressSanitizer + UndefinedBehaviorSanitizer (CMake preset
# "asan", build-asan/); any report fails its test. About twice the plain suite's time, so it
# runs nightly rather than in .ci/run. Extra arguments go to ctest (e.g. -R fuzz_replay).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset asan >/dev/null
cmake --build --preset asan -j"$(nproc)"
ctest --preset asan -j"$(nproc)" "$@"
