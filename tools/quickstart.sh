#!/usr/bin/env bash
# Fresh machine to first result: installs the Debian packages, builds morphokd, puts the
# MHSMA data in place, and runs the main job. At this stage of the project the main job is
# the audit forward pass: the VGG16 teacher (Xavier random, seed 0) on the first 16 MHSMA
# test cells, every layer's output dumped for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
bash data/fetch_mhsma.sh
out=out/forward-$(date +%Y%m%d-%H%M%S)
mkdir -p out
build/apps/morphokd forward --weights random:0 --input data/mhsma/x_64_test.npy --limit 16 --dump "$out"
cat "$out/kernels.txt"
