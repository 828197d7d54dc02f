#!/usr/bin/env bash
# morphokd (oneDNN backend) vs PyTorch, teacher forward at batch 64, 64x64, same threads,
# alternating ROUNDS times on this machine; prints the medians and their ratio.
# Usage: perf/compare_teacher_forward.sh BUILD_DIR [THREADS] [ROUNDS]
set -eu
BUILD=${1:?build directory} THREADS=${2:-$(nproc)} ROUNDS=${3:-3}
ours=() theirs=()
for r in $(seq "$ROUNDS"); do
  o=$("$BUILD/perf/bench_teacher_forward" --threads="$THREADS" --benchmark_filter=onednn --benchmark_min_time=3 \
        --benchmark_format=json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["benchmarks"][0]["img_per_s"])')
  t=$(/usr/bin/python3 "$(dirname "$0")/teacher_forward_torch.py" --threads "$THREADS" --iters 10 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["img_per_s"])')
  echo "round $r: morphokd $o img/s, pytorch $t img/s"
  ours+=("$o") theirs+=("$t")
done
/usr/bin/python3 - "$THREADS" "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
threads, ours, theirs = sys.argv[1], [float(v) for v in sys.argv[2].split()], [float(v) for v in sys.argv[3].split()]
o, t = statistics.median(ours), statistics.median(theirs)
print(f"teacher_fwd batch 64, 64x64, {threads} threads: morphokd {o:.1f} img/s, pytorch {t:.1f} img/s, ratio {o / t:.2f}x "
      f"({o * 2.51:.0f} GFLOP/s)")
PY
