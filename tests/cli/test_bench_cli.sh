#!/usr/bin/env bash
# `morphokd bench`: every workload runs and prints one JSON line with the documented keys;
# the epoch trains on MHSMA with the teacher cache; bad options are one-line errors.
set -u
MORPHOKD=$1 DATA=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK"
. "$(dirname "$0")/harness.sh"

# has_keys FILE: one line holding every key the README documents, a positive img_per_s
# (below 1 img/s is fine: CI runs this next to cli_mpi on 2 cores). Prints why it fails.
has_keys() {
  [ "$(wc -l <"$1")" -eq 1 ] || { echo "not one line: $(head -3 "$1")"; return 1; }
  for k in what img_per_s gflops peak_fraction threads isa peak_rss_mb; do
    grep -q "\"$k\":" "$1" || { echo "no \"$k\" in $(cat "$1")"; return 1; }
  done
  local rate; rate=$(sed -E 's/.*"img_per_s":([^,}]*).*/\1/' "$1")
  awk -v r="$rate" 'BEGIN { exit !(r + 0 > 0) }' || { echo "img_per_s is $rate"; return 1; }
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

# bf16 teacher: runs where oneDNN dispatches bf16 instructions (bench, and a run trained and
# evaluated with it), else a one-line error naming this CPU's ISA and no run directory.
ISA=$(sed -E 's/.*"isa":"([^"]*)".*/\1/' "$WORK/teacher_fwd.json")
case $ISA in
  avx512_core_bf16 | avx512_core_amx)
    for w in teacher_fwd score train_step; do
      check "bench $w bf16" "$MORPHOKD" --threads 2 bench --what $w --precision bf16 --batch 2 --iters 1 --json
      cp "$WORK/last.log" "$WORK/$w-bf16.json"
      check "bench $w bf16 JSON" grep -q '"precision":"bf16"' "$WORK/$w-bf16.json"
    done
    check "train bf16" "$MORPHOKD" train --part head --data "$DATA" --precision bf16 --steps 2 --out "$WORK/bf16"
    check "run.json records bf16" grep -q '"precision": "bf16"' "$WORK/bf16/run.json"
    check "eval bf16" "$MORPHOKD" eval --run "$WORK/bf16" --split test
    ;;
  *)
    expect_error bf16 "AVX512-BF16 or AMX; this one dispatches $ISA" "$MORPHOKD" bench --precision bf16
    expect_error train_bf16 "AVX512-BF16 or AMX; this one dispatches $ISA" \
      "$MORPHOKD" train --part head --data "$DATA" --precision bf16 --steps 2 --out "$WORK/bf16"
    check "no run directory" test ! -e "$WORK/bf16"
    ;;
esac
expect_error fgsm_bf16 "applies to teacher_fwd, score and train_step" "$MORPHOKD" bench --what fgsm --precision bf16
expect_error no_data "$WORK/absent" "$MORPHOKD" bench --what epoch --data "$WORK/absent"
finish cli_bench
