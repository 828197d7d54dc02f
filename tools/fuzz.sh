#!/usr/bin/env bash
# Builds the libFuzzer harnesses (CMake preset "fuzz": Clang, ASan + UBSan) and runs each for
# RUNS executions (default 10^7), starting from tests/fuzz/corpus/HARNESS. Prints one line per
# harness: executions, seconds, corpus size, findings. A finding is saved under
# build-fuzz/findings/HARNESS/; copy it into tests/fuzz/corpus/HARNESS/ as regress-*.
# Usage: tools/fuzz.sh [RUNS] [HARNESS...]   (harnesses: npy safetensors run_json image)
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10000000}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(npy safetensors run_json image)
cmake --preset fuzz >/dev/null && cmake --build --preset fuzz -j"$(nproc)" >/dev/null || exit 1

# Cells are 64x64 (a u8 .npy of one cell is 4224 bytes); larger inputs only slow the search.
declare -A max_len=([npy]=20000 [safetensors]=4096 [run_json]=4096 [image]=8192)
export OPENCV_LOG_LEVEL=SILENT ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
status=0
for h in "${harnesses[@]}"; do
  work=build-fuzz/work/$h findings=build-fuzz/findings/$h
  mkdir -p "$work" "$findings"
  log=build-fuzz/$h.log
  start=$(date +%s)
  build-fuzz/tests/fuzz/fuzz_"$h" "$work" "tests/fuzz/corpus/$h" -runs="$runs" -max_len="${max_len[$h]}" \
    -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  found=$(find "$findings" -type f | wc -l)
  echo "$h: ${execs:-0} executions in $(( $(date +%s) - start )) s, corpus $(find "$work" -type f | wc -l) inputs, findings $found (exit $rc, log $log)"
  [ "$rc" -eq 0 ] && [ "$found" -eq 0 ] || status=1
done
exit $status
