#!/usr/bin/env bash
# `morphokd bench`: every workload runs and prints one JSON line with the documented keys;
# the epoch trains on MHSMA with the teacher cache; bad options are one-line errors.
set -u
MORPHOKD=$1 DATA=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK"
. "$(dirname "$0")/harness.sh"

# has_keys FILE: one line holding every key the README documents, a positive img_per_s.
has_keys() {
  [ "$(wc -l <"$1")" -eq 1 ] || return 1
  for k in what img_per_s gflops peak_fraction threads isa peak_rss_mb; do grep -q "\"$k\":" "$1" || return 1; done
  ! grep -q '"img_per_s":0[,.]' "$1"
}
for w in teacher_fwd score train_step fgsm; do
  check "bench $w" "$MORPHOKD" --threads 2 bench --what $w --batch 2 --iters 1 --json
  cp "$WORK/last.log" "$WORK/$w.json"
  check "bench $w JSON" has_keys "$WORK/$w.json"
done
check "bench epoch" "$MORPHOKD" --threads 2 bench --what epoch --iters 1 --data "$DATA" --json
cp "$WORK/last.log" "$WORK/epoch.json"
check "bench epoch JSON" has_keys "$WORK/epoch.json"
check "bench epoch built the cache" bash -c "! grep -q '\"cache_seconds\":0.0' '$WORK/epoch.json'"
check "bench epoch left nothing in /tmp" bash -c "! ls -d /tmp/morphokd-bench-* 2>/dev/null"

expect_error bf16 "--precision bf16 is not supported" "$MORPHOKD" bench --precision bf16
expect_error no_data "$WORK/absent" "$MORPHOKD" bench --what epoch --data "$WORK/absent"
finish cli_bench
