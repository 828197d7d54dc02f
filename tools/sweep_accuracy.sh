#!/usr/bin/env bash
# One cell of the accuracy grid (issue 4): trains a student per part and seed with the given
# teacher and input pipeline, then evaluates it on the validation and test splits.
# Finished runs are skipped, so an interrupted sweep continues where it stopped.
# Usage: tools/sweep_accuracy.sh ROOT TEACHER INPUT "SEEDS" "PARTS" [extra train options]
#   e.g. tools/sweep_accuracy.sh out/sweep random:0 image "0 1 2" "head vacuole acrosome tail"
# Runs land in ROOT/TEACHER~INPUT/PART-sSEED; tools/accuracy_table.py summarises them.
set -euo pipefail
cd "$(dirname "$0")/.."
morphokd=${MORPHOKD:-build/apps/morphokd}  # point it at a copy to keep rebuilding while a sweep runs
root=$1 teacher=$2 input=$3 seeds=$4 parts=$5
shift 5
tag=$(basename "$teacher" .safetensors | tr ':/' '__')~$input
for part in $parts; do
  for seed in $seeds; do
    run=$root/$tag/$part-s$seed
    [[ -f $run/eval_test.json ]] && continue
    rm -rf "$run"
    mkdir -p "$root/$tag"
    "$morphokd" train --part "$part" --teacher "$teacher" --input-norm "$input" --seed "$seed" --out "$run" "$@" \
      > "$run.log" 2>&1 || { echo "train failed: $run (see $run.log)"; exit 1; }
    for split in valid test; do "$morphokd" eval --run "$run" --split "$split" >> "$run.log"; done
    echo "$run: $(grep -h '^[a-z]*, test split' "$run.log")"
  done
done
