#!/usr/bin/env bash
# Fresh machine to first result: installs the Debian packages, builds morphokd, puts MHSMA
# in place, trains a head student on normal cells with train's defaults (random:0 teacher,
# per-image standardised input, student B, 15 epochs, flip augmentation, score over pools
# 2-5 with flip TTA; README "Accuracy") and evaluates it on the test split.
# Usage: tools/quickstart.sh [PART] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:-head} epochs=${2:-15}
bash tools/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
bash data/fetch_mhsma.sh
run=out/$part-$(date +%Y%m%d-%H%M%S)
build/apps/morphokd train --part "$part" --data data/mhsma --epochs "$epochs" --out "$run"
build/apps/morphokd eval --run "$run" --split test
echo "run directory: $run (eval_test.json, scores_test.csv, student.safetensors, run.json)"
