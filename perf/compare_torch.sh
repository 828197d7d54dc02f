#!/usr/bin/env bash
# morphokd (oneDNN backend) vs PyTorch on the same work, batch 64, 64x64, same threads,
# alternating ROUNDS times on this machine; prints the medians and their ratio ours/pytorch.
# Usage: perf/compare_torch.sh WORKLOAD BUILD_DIR [THREADS] [ROUNDS]
#   WORKLOAD  teacher_fwd  VGG16 teacher forward (perf/bench_teacher_forward vs teacher_forward_torch.py)
#             fgsm         one FGSM step on the MKD score (perf/bench_fgsm vs fgsm_torch.py)
set -eu
HERE=$(dirname "$0")
# workload -> Google Benchmark binary (under BUILD_DIR/perf), its filter, PyTorch script, GFLOP per image ("-": none)
declare -A BIN=([teacher_fwd]=bench_teacher_forward [fgsm]=bench_fgsm)
declare -A FILTER=([teacher_fwd]=onednn [fgsm]=onednn)
declare -A SCRIPT=([teacher_fwd]=teacher_forward_torch.py [fgsm]=fgsm_torch.py)
declare -A GFLOP=([teacher_fwd]=2.51 [fgsm]=-)

usage() { echo "usage: $0 WORKLOAD BUILD_DIR [THREADS] [ROUNDS]   (WORKLOAD: ${!BIN[*]})" >&2; exit 2; }
[ $# -ge 2 ] || usage
W=$1 BUILD=$2 THREADS=${3:-$(nproc)} ROUNDS=${4:-3}
[ -n "${BIN[$W]:-}" ] || { echo "unknown workload '$W'" >&2; usage; }
bin="$BUILD/perf/${BIN[$W]}"
[ -x "$bin" ] || { echo "$bin not found (build it first)" >&2; exit 1; }

ours=() theirs=()
for r in $(seq "$ROUNDS"); do
  o=$("$bin" --threads="$THREADS" --benchmark_filter="${FILTER[$W]}" --benchmark_min_time=3 \
        --benchmark_format=json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["benchmarks"][0]["img_per_s"])')
  t=$(/usr/bin/python3 "$HERE/${SCRIPT[$W]}" --threads "$THREADS" --iters 10 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["img_per_s"])')
  echo "round $r: morphokd $o img/s, pytorch $t img/s"
  ours+=("$o") theirs+=("$t")
done
/usr/bin/python3 - "$W" "$THREADS" "${GFLOP[$W]}" "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
w, threads, gflop = sys.argv[1:4]
ours, theirs = [float(v) for v in sys.argv[4].split()], [float(v) for v in sys.argv[5].split()]
o, t = statistics.median(ours), statistics.median(theirs)
extra = f" ({o * float(gflop):.0f} GFLOP/s)" if gflop != "-" else ""
print(f"{w} batch 64, 64x64, {threads} threads: morphokd {o:.1f} img/s, pytorch {t:.1f} img/s, "
      f"ratio {o / t:.2f}x{extra}")
PY
