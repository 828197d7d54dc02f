#!/usr/bin/env bash
# Bitwise reproducibility across thread counts (deterministic mode, the default): training,
# eval's scores, scoring, FGSM and localization give the same bytes at 1, 2 and 4 threads
# (where the CPU has them also with the fp32-winograd and bf16 teachers), and
# ONEDNN_DEFAULT_FPMATH_MODE cannot loosen oneDNN's strict fp32 math.
set -u
MORPHOKD=$1 DATA=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK"
. "$(dirname "$0")/harness.sh"
TEST="$WORK/cells32.npy"  # the first 32 test cells
slice_npy "$DATA/x_64_test.npy" "$TEST" 32 4096 "(32, 64, 64)"

same() {  # same WHAT FILE...: every file byte-identical to the first
  local what=$1 first=$2; shift 2
  for f in "$@"; do
    if ! cmp -s "$first" "$f"; then bad "$what: $f differs from $first"; return; fi
  done
  ok "$what"
}

for t in 1 2 4; do
  R="$WORK/t$t"
  check "train 2 epochs, $t threads" "$MORPHOKD" --threads "$t" train --part head --data "$DATA" --student B --epochs 2 --out "$R"
  check "eval test, $t threads" "$MORPHOKD" --threads "$t" eval --run "$R" --split test
  check "score, $t threads" "$MORPHOKD" --threads "$t" score --run "$WORK/t1" --input "$TEST" --out "$WORK/score_t$t.csv"
  check "attack, $t threads" "$MORPHOKD" --threads "$t" attack --run "$WORK/t1" --input "$TEST" --eps 0.005 --out "$WORK/adv_t$t.npy"
  check "localize smoothgrad, $t threads" "$MORPHOKD" --threads "$t" localize --run "$WORK/t1" --split test --label 1 \
    --limit 2 --method smoothgrad --n 8 --out "$WORK/loc_t$t"
done
same "student.safetensors equal at 1, 2, 4 threads" "$WORK"/t{1,2,4}/student.safetensors
same "checkpoint equal at 1, 2, 4 threads" "$WORK"/t{1,2,4}/checkpoint.safetensors
same "test scores CSV equal at 1, 2, 4 threads" "$WORK"/t{1,2,4}/scores_test.csv
same "score CSV equal at 1, 2, 4 threads" "$WORK"/score_t{1,2,4}.csv
same "FGSM cells equal at 1, 2, 4 threads" "$WORK"/adv_t{1,2,4}.npy
for f in "$WORK"/loc_t1/*.npy; do
  same "SmoothGrad map $(basename "$f") equal at 1, 2, 4 threads" "$f" "$WORK"/loc_t{2,4}/"$(basename "$f")"
done
check "run.json records deterministic mode" grep -q '"deterministic": true' "$WORK/t1/run.json"
check "run.json records strict fpmath" grep -Eq '"onednn_fpmath": "(strict|none)"' "$WORK/t1/run.json"

# The Winograd (AVX-512) and bf16 (AVX512-BF16, AMX) teachers where the CPU has their
# instructions: training, eval's scores and the attack's clean and attacked scores too.
ISA=$(sed -n 's/.*"isa": "\([a-z0-9_]*\)".*/\1/p' "$WORK/t1/run.json")
case $ISA in avx512_core_bf16 | avx512_core_amx) PRECISIONS="fp32-winograd bf16" ;; avx512_core*) PRECISIONS=fp32-winograd ;; *) PRECISIONS= ;; esac
for p in $PRECISIONS; do
  for t in 1 2 4; do
    check "train $p 1 epoch, $t threads" "$MORPHOKD" --threads "$t" train --part head --data "$DATA" --precision "$p" \
      --epochs 1 --augment none --out "$WORK/${p}_t$t"
    check "eval $p test, $t threads" "$MORPHOKD" --threads "$t" eval --run "$WORK/${p}_t$t" --split test
  done
  same "$p student equal at 1, 2, 4 threads" "$WORK/${p}"_t{1,2,4}/student.safetensors
  same "$p test scores CSV equal at 1, 2, 4 threads" "$WORK/${p}"_t{1,2,4}/scores_test.csv
  # An attack of size 0 leaves the cells as they were: their scores before and after agree.
  check "attack $p, eps 0" sh -c "\"\$0\" attack --run \"\$1\" --input \"\$2\" --eps 0 --out \"\$3\" >\"\$4\"" \
    "$MORPHOKD" "$WORK/${p}_t1" "$TEST" "$WORK/${p}_adv0.npy" "$WORK/${p}_adv0.log"
  check "attack $p, eps 0: clean cells scored as the attacked ones" grep -Eq 'mean score ([0-9.]+) -> \1$' "$WORK/${p}_adv0.log"
done

# An environment asking oneDNN for bf16 math changes nothing.
check "score with ONEDNN_DEFAULT_FPMATH_MODE=bf16" env ONEDNN_DEFAULT_FPMATH_MODE=bf16 "$MORPHOKD" --threads 2 \
  score --run "$WORK/t1" --input "$TEST" --out "$WORK/score_bf16env.csv"
same "fpmath environment ignored" "$WORK/score_t2.csv" "$WORK/score_bf16env.csv"

# Fast mode is offered, and recorded.
check "train --deterministic off" "$MORPHOKD" --deterministic off --threads 2 train --part head --data "$DATA" --steps 2 --out "$WORK/fast"
check "run.json records fast mode" grep -q '"deterministic": false' "$WORK/fast/run.json"
expect_error "bad --deterministic" "--deterministic" "$MORPHOKD" --deterministic maybe info --student B
finish cli_reproducibility
