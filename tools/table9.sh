#!/usr/bin/env bash
# The paper's Table 9 on our stack: test AUC per part with and without flip/rotate
# augmentation and FGSM adversarial training (default teacher, input and score; one seed).
# Usage: tools/table9.sh ROOT [EPOCHS] [EPS] [PARTS] [SEED]
# Runs land in ROOT/aug-AUG~fgsm-EPS/random_0~image/PART-sSEED (tools/sweep_accuracy.sh);
# configurations run one after another over all parts, so a cut-short sweep still compares.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$1 epochs=${2:-5} eps=${3:-0.01} parts=${4:-head vacuole acrosome tail} seed=${5:-0}
for cfg in "none 0" "none $eps" "flip,rotate 0" "flip,rotate $eps"; do
  read -r aug fgsm <<< "$cfg"
  tools/sweep_accuracy.sh "$root/aug-$aug~fgsm-$fgsm" random:0 image "$seed" "$parts" \
    --epochs "$epochs" --augment "$aug" --fgsm-eps "$fgsm"
done
