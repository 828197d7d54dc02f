#!/usr/bin/env bash
# morphokd vs PyTorch on the same machine, same threads, batch 64, 64x64: each workload
# measured ROUNDS times, the two sides alternating; prints a markdown table of the medians,
# the ratios ours/PyTorch, each side's GFLOP/s and share of the measured FMA peak, the ratio
# ours would reach at that peak (fp32), and peak RSS.
# Usage: perf/compare.sh MORPHOKD [THREADS] [ROUNDS] [WORKLOADS...]
#   MORPHOKD   the morphokd binary (build/apps/morphokd)
#   WORKLOADS  teacher_fwd train_step score fgsm epoch (default: all; epoch needs data/mhsma);
#              W:PRECISION (W:bf16, W:fp32-winograd) runs ours with --precision PRECISION against
#              PyTorch's fp32 (the issue's bar)
# MORPHOKD_DETERMINISTIC=off measures our fast mode (default on, as users train).
# PyTorch runs twice per round: as installed, and with glibc's malloc keeping freed memory
# (KEPT below). PyTorch frees and allocates its large tensors every step, and where page faults
# are dear (some VMs) the default returns them to the kernel each time; speed ratios are taken
# against the faster of the two, peak RSS against the smaller.
set -eu
HERE=$(dirname "$0")
[ $# -ge 1 ] || { echo "usage: $0 MORPHOKD [THREADS] [ROUNDS] [WORKLOADS...]" >&2; exit 2; }
BIN=$1 THREADS=${2:-$(nproc)} ROUNDS=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
WHAT=${*:-teacher_fwd train_step score fgsm epoch}
[ -x "$BIN" ] || { echo "$BIN not found (build it first)" >&2; exit 1; }
DATA=${MORPHOKD_DATA:-data/mhsma}
DET=${MORPHOKD_DETERMINISTIC:-on}
KEPT="MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=1073741824"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for spec in $WHAT; do
  w=${spec%%:*} prec=fp32
  [ "$w" != "$spec" ] && prec=${spec#*:}
  iters=10; [ "$w" = epoch ] && iters=2
  for r in $(seq "$ROUNDS"); do
    o=$("$BIN" --threads "$THREADS" --deterministic "$DET" bench --what "$w" --precision "$prec" --iters "$iters" --data "$DATA" --json)
    t=$(/usr/bin/python3 "$HERE/compare_torch.py" --what "$w" --threads "$THREADS" --iters "$iters" --data "$DATA")
    k=$(env $KEPT /usr/bin/python3 "$HERE/compare_torch.py" --what "$w" --threads "$THREADS" --iters "$iters" --data "$DATA")
    echo "$spec round $r: morphokd $o" >&2
    echo "$spec round $r: pytorch  $t" >&2
    echo "$spec round $r: pytorch, malloc kept  $k" >&2
    printf '%s\t%s\t%s\t%s\n' "$spec" "$o" "$t" "$k" >> "$out"
  done
done
/usr/bin/python3 - "$out" "$THREADS" <<'PY'
import collections, json, statistics, sys
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    w, *sides = line.rstrip("\n").split("\t")
    rows.setdefault(w, []).append([json.loads(s) for s in sides])
print(f"| workload ({sys.argv[2]} threads, batch 64) | morphokd img/s | PyTorch img/s: as installed / malloc kept | ratio to the faster "
      f"| GFLOP/s (FMA peak share) | PyTorch's faster: GFLOP/s (peak share) | ratio at the peak | peak RSS ours / PyTorch's smaller | RSS ratio "
      f"| page faults per step: ours / as installed / malloc kept |")
print("|---|---|---|---|---|---|---|---|---|---|")
def faults(runs, side):
    v = [r[side].get("minor_faults_per_step") for r in runs]
    return "—" if None in v else f"{statistics.median(v):.0f}"
for w, runs in rows.items():
    med = lambda key, side: statistics.median(r[side][key] for r in runs)
    o, t, k = (med("img_per_s", side) for side in range(3))
    ours = runs[0][0]
    gf, peak = med("gflops", 0), med("peak_gflops", 0)
    # PyTorch computes direct fp32 convolutions, so our direct operation count is its work too (not in
    # an epoch, where ours skips the cached teacher). For an fp32 row, the ratio ours would reach at
    # the measured peak: how far arithmetic lets it go (a run can pass that peak by a few per cent).
    gpi = med("gflop_per_image", 0)
    theirs = "—" if w.split(":")[0] == "epoch" else f"{max(t, k) * gpi:.0f} ({max(t, k) * gpi / peak:.0%})"
    ceiling = "—" if ":" in w else f"{peak / gpi / max(t, k):.2f}x"
    rss, trss = med("peak_rss_mb", 0), min(med("peak_rss_mb", 1), med("peak_rss_mb", 2))
    print(f"| {w} | {o:.1f} | {t:.1f} / {k:.1f} | **{o / max(t, k):.2f}x** | {gf:.0f} ({gf / peak:.0%} of {peak:.0f}) | "
          f"{theirs} | {ceiling} | "
          f"{rss:.0f} / {trss:.0f} MB | {rss / trss:.2f}x | {' / '.join(faults(runs, side) for side in range(3))} |")
print(f"\nisa {ours['isa']}, backend {ours['backend']}, deterministic {ours['deterministic']}, {len(next(iter(rows.values())))} alternating rounds, medians")
PY
