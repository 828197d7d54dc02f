#!/usr/bin/env bash
# Score-rule refinements of finished sweep runs (issue 4), none of which sees abnormal labels:
# re-evaluates each run of ROOT/TAG with every SCORE:TTA:POOLS variant (eval --score --tta
# --score-critical, written to RUN/SCORE-TTA-POOLS), and with 3 or more seeds per part also the
# ensemble of those seeds (ROOT/ensembles/TAG~SCORE-TTA-POOLS/PART). Finished ones are skipped.
# Usage: tools/refine_accuracy.sh ROOT TAG "layer-z:none:3,4,5 sum:flip:2,3,4,5 ..." ["VARIANTS" for ensembles]
set -euo pipefail
cd "$(dirname "$0")/.."
morphokd=${MORPHOKD:-build/apps/morphokd}
root=$1 tag=$2 variants=$3 ensembles=${4:-}
for run in "$root/$tag"/*-s*/; do
  run=${run%/}
  [[ -f $run/eval_test.json ]] || continue
  for v in $variants; do
    IFS=: read -r score tta pools <<<"$v"
    out=$run/$score-$tta-$pools
    [[ -f $out/eval_test.json ]] && continue
    for split in valid test; do
      "$morphokd" eval --run "$run" --split "$split" --score "$score" --tta "$tta" --score-critical "$pools" --out "$out" > "$out.$split.log" 2>&1
    done
    echo "$out: $(head -1 "$out.test.log")"
  done
done
for part in head vacuole acrosome tail; do
  runs=()
  for run in "$root/$tag/$part"-s*/; do [[ -f ${run}eval_test.json ]] && runs+=(--run "${run%/}"); done
  (( ${#runs[@]} >= 6 )) || continue  # at least 3 seeds
  for v in $ensembles; do
    IFS=: read -r score tta pools <<<"$v"
    out=$root/ensembles/$tag~$score-$tta-$pools/$part
    [[ -f $out/eval_test.json ]] && continue
    mkdir -p "$(dirname "$out")"
    for split in valid test; do
      "$morphokd" eval "${runs[@]}" --split "$split" --score "$score" --tta "$tta" --score-critical "$pools" --out "$out" > "$out.$split.log" 2>&1
    done
    echo "$out: $(head -1 "$out.test.log")"
  done
done
