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
  for k in what img_per_s gflops peak_fraction threads isa peak_rss_mb minor_faults_per_step; do
    grep -q "\"$k\":" "$1" || { echo "no \"$k\" in $(cat "$1")"; return 1; }
  done
  local rate; rate=$(sed -E 's/.*"img_per_s":([^,}]*).*/\1/' "$1")
  awk -v r="$rate" 'BEGIN { exit !(r + 0 > 0) }' || { echo "img_per_s is $rate"; return 1; }
}
for w in teacher_fwd score train_step fgsm; do
  check "bench $w" "$MORPHOKD" --threads 2 bench --what $w --batch 2 --iters 1 --json
  cp "$WORK/last.log" "$WORK/$w.json"
  check "bench $w JSON" has_keys "$WORK/$w.json"
  check "bench $w counts page faults" grep -Eq '"minor_faults_per_step":[0-9]' "$WORK/$w.json"
done
check "bench epoch" "$MORPHOKD" --threads 2 bench --what epoch --iters 1 --data "$DATA" --json
cp "$WORK/last.log" "$WORK/epoch.json"
check "bench epoch JSON" has_keys "$WORK/epoch.json"
check "bench epoch leaves page faults unmeasured" grep -q '"minor_faults_per_step":null' "$WORK/epoch.json"
check "bench epoch built the cache" bash -c "! grep -q '\"cache_seconds\":0.0' '$WORK/epoch.json'"
check "bench epoch left nothing in /tmp" bash -c "! ls -d /tmp/morphokd-bench-* 2>/dev/null"

# The fp32-winograd and bf16 teachers: each runs where oneDNN dispatches its instructions
# (bench's workloads it changes, and a run trained and evaluated with it), else a one-line
# error naming this CPU's ISA and no run directory.
ISA=$(sed -E 's/.*"isa":"([^"]*)".*/\1/' "$WORK/teacher_fwd.json")
teacher_precision() {  # teacher_precision NAME AVAILABLE NEEDS WORKLOADS
  local p=$1 available=$2 needs=$3 workloads=$4
  if [ "$available" = yes ]; then
    for w in $workloads; do
      check "bench $w $p" "$MORPHOKD" --threads 2 bench --what $w --precision "$p" --batch 2 --iters 1 --json
      cp "$WORK/last.log" "$WORK/$w-$p.json"
      check "bench $w $p JSON" grep -q "\"precision\":\"$p\"" "$WORK/$w-$p.json"
    done
    check "train $p" "$MORPHOKD" train --part head --data "$DATA" --precision "$p" --steps 2 --out "$WORK/$p"
    check "run.json records $p" grep -q "\"precision\": \"$p\"" "$WORK/$p/run.json"
    check "eval $p" "$MORPHOKD" eval --run "$WORK/$p" --split test
  else
    for w in $workloads; do
      expect_error "bench_${w}_$p" "$needs; this one dispatches $ISA" "$MORPHOKD" bench --what $w --precision "$p"
    done
    expect_error "train_$p" "$needs; this one dispatches $ISA" \
      "$MORPHOKD" train --part head --data "$DATA" --precision "$p" --steps 2 --out "$WORK/$p"
    check "no run directory ($p)" test ! -e "$WORK/$p"
  fi
}
case $ISA in avx512_core*) winograd=yes ;; *) winograd=no ;; esac
case $ISA in avx512_core_bf16 | avx512_core_amx) bf16=yes ;; *) bf16=no ;; esac
teacher_precision fp32-winograd $winograd "AVX-512" "teacher_fwd score train_step fgsm"
teacher_precision bf16 $bf16 "AVX512-BF16 or AMX" "teacher_fwd score train_step"
expect_error fgsm_bf16 "applies to teacher_fwd, score and train_step" "$MORPHOKD" bench --what fgsm --precision bf16
expect_error epoch_winograd "applies to teacher_fwd, score, train_step and fgsm" \
  "$MORPHOKD" bench --what epoch --precision fp32-winograd
expect_error no_data "$WORK/absent" "$MORPHOKD" bench --what epoch --data "$WORK/absent"
finish cli_bench
