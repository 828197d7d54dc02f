#!/usr/bin/env bash
# Data-parallel scaling of a training step (student B on head, global batch 64, teacher targets
# recomputed per shard as on a cluster without a shared cache): 1 and 2 MPI ranks of 1 thread
# each on this machine, then a model of step time for N ranks,
#   T(N) = C / N + G (N - 1) / N / bandwidth,
# C the measured one-rank compute per step, G the bytes all-gathered per step (every rank
# receives every group's partial weight gradients), bandwidth measured here at N = 2 and, for
# a cluster, 10 Gbit/s Ethernet at 1.1 GB/s.
# Usage: perf/mpi_scaling.sh MORPHOKD DATA [STEPS=10]
set -euo pipefail
MORPHOKD=$1 DATA=$2 STEPS=${3:-10}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
args=(train --part head --data "$DATA" --teacher random:0 --student B --augment none --cache-limit-gb 0 --no-shuffle --steps "$STEPS")
for n in 1 2; do
  mpirun --oversubscribe -np "$n" "$MORPHOKD" --distributed mpi --threads 1 "${args[@]}" --out "$WORK/np$n" >/dev/null
done
python3 - "$WORK" "$STEPS" <<'PY'
import json, sys
work, steps = sys.argv[1], int(sys.argv[2])
params = json.load(open(f"{work}/np1/run.json"))["student"]["parameters"]
def log(n):
    return json.loads(open(f"{work}/np{n}/train_log.jsonl").readline())
one, two = log(1), log(2)
c = one["seconds"] / steps                          # one rank: compute per step
t2, comm2 = two["seconds"] / steps, two["comm_seconds"] / steps
gathered = 16 * params * 4                            # 16 groups of 4 images x float32 partials
bw_here = gathered * 0.5 / max(comm2, 1e-9)
print(f"| ranks x threads | step (s) | of which all-gather (s) | img/s | speed-up |")
print(f"|---|---|---|---|---|")
print(f"| 1 x 1 (measured) | {c:.3f} | 0 | {64 / c:.1f} | 1.00 |")
print(f"| 2 x 1 (measured) | {t2:.3f} | {comm2:.3f} | {64 / t2:.1f} | {c / t2:.2f} |")
print()
print(f"all-gathered per step: {gathered / 1e6:.1f} MB; bandwidth seen at N = 2: {bw_here / 1e9:.2f} GB/s")
print(f"| N | model here (s) | img/s | model 10 GbE (s) | img/s |")
print(f"|---|---|---|---|---|")
for n in (1, 2, 4, 8, 16):
    here = c / n + gathered * (n - 1) / n / bw_here
    eth = c / n + gathered * (n - 1) / n / 1.1e9
    print(f"| {n} | {here:.3f} | {64 / here:.1f} | {eth:.3f} | {64 / eth:.1f} |")
PY
