#!/usr/bin/env bash
# Score-rule refinements of finished sweep runs (issue 4), none of which sees abnormal labels:
# re-evaluates each run of ROOT/TAG with every SCORE:TTA variant (eval --score --tta, written
# to RUN/SCORE-TTA), and with several seeds per part also the ensemble of those seeds
# (ROOT/ensembles/TAG~SCORE-TTA/PART). Finished evaluations are skipped.
# Usage: tools/refine_accuracy.sh ROOT TAG "layer-z:none sum:flip layer-z:flip" ["sum:none ..." for ensembles]
set -euo pipefail
cd "$(dirname "$0")/.."
morphokd=${MORPHOKD:-build/apps/morphokd}
root=$1 tag=$2 variants=$3 ensembles=${4:-}
for run in "$root/$tag"/*-s*/; do
  run=${run%/}
  [[ -f $run/eval_test.json ]] || continue
  for v in $variants; do
    out=$run/${v/:/-}
    [[ -f $out/eval_test.json ]] && continue
    for split in valid test; do
      "$morphokd" eval --run "$run" --split "$split" --score "${v%%:*}" --tta "${v##*:}" --out "$out" > "$out.$split.log" 2>&1
    done
    echo "$out: $(head -1 "$out.test.log")"
  done
done
for part in head vacuole acrosome tail; do
  runs=()
  for run in "$root/$tag/$part"-s*/; do [[ -f ${run}eval_test.json ]] && runs+=(--run "${run%/}"); done
  (( ${#runs[@]} >= 6 )) || continue  # at least 3 seeds
  for v in $ensembles; do
    out=$root/ensembles/$tag~${v/:/-}/$part
    [[ -f $out/eval_test.json ]] && continue
    mkdir -p "$(dirname "$out")"
    for split in valid test; do
      "$morphokd" eval "${runs[@]}" --split "$split" --score "${v%%:*}" --tta "${v##*:}" --out "$out" > "$out.$split.log" 2>&1
    done
    echo "$out: $(head -1 "$out.test.log")"
  done
done
