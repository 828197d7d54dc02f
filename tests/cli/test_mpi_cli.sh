#!/usr/bin/env bash
# Data-parallel training and scoring under mpirun (tests only where mpirun exists):
# np 2, and np 3 on global batches not divisible by 3, train the student one process trains,
# byte for byte; scoring split over 3 ranks writes one process's CSV; ranks that disagree on
# their data stop with one error; a rank killed mid-run ends the job instead of hanging.
set -u
MORPHOKD=$1 DATA=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK"
. "$(dirname "$0")/harness.sh"
# CI machines run as root; containers often forbid the shared-memory transport's single-copy mode.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
# Under the asan preset: OpenMPI's own leaks suppressed by library. Matching needs whole stacks
# (the slow unwinder) and its plugins kept loaded, else their frames are "<unknown module>".
if [ -n "${ASAN_OPTIONS:-}" ]; then
  export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" OMPI_MCA_mca_base_component_disable_dlclose=1
  export LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")" && pwd)/lsan_openmpi.supp:print_suppressions=0"
fi
mpi() { local n=$1; shift; mpirun --oversubscribe -np "$n" "$MORPHOKD" --distributed mpi --threads 1 "$@"; }
# Targets recomputed per shard (no cache), so each rank's teacher runs on its own images only.
common=(train --part head --data "$DATA" --teacher random:0 --student B --augment none --cache-limit-gb 0 --no-shuffle --steps 5)

check "one process, batch 64" "$MORPHOKD" --threads 2 "${common[@]}" --out "$WORK/np1"
check "np 2, batch 64" mpi 2 "${common[@]}" --out "$WORK/np2"
check "np 2 student = one process's" cmp "$WORK/np1/student.safetensors" "$WORK/np2/student.safetensors"
check "np 2 checkpoint = one process's" cmp "$WORK/np1/checkpoint.safetensors" "$WORK/np2/checkpoint.safetensors"
check "np 3, batch 64 (6/5/5 groups of 4)" mpi 3 "${common[@]}" --out "$WORK/np3"
check "np 3 student = one process's" cmp "$WORK/np1/student.safetensors" "$WORK/np3/student.safetensors"
check "one process, batch 26" "$MORPHOKD" --threads 2 "${common[@]}" --batch 26 --out "$WORK/np1b26"
check "np 3, batch 26 (12/8/6 images)" mpi 3 "${common[@]}" --batch 26 --out "$WORK/np3b26"
check "np 3 batch 26 student = one process's" cmp "$WORK/np1b26/student.safetensors" "$WORK/np3b26/student.safetensors"
check "run.json records the ranks" grep -q '"ranks": 3' "$WORK/np3/run.json"
check "train log reports communication time" grep -q '"comm_seconds"' "$WORK/np3/train_log.jsonl"
check "only rank 0 wrote: no partial run left" test -z "$(ls -d "$WORK"/*.partial* "$WORK"/np3/*.tmp* 2>/dev/null)"

check "score, one process" "$MORPHOKD" score --run "$WORK/np1" --input "$DATA/x_64_test.npy" --out "$WORK/s1.csv"
check "score, np 3" mpi 3 score --run "$WORK/np1" --input "$DATA/x_64_test.npy" --out "$WORK/s3.csv"
check "np 3 scores = one process's" cmp "$WORK/s1.csv" "$WORK/s3.csv"

# Rank 1 reads a copy of the data with one changed label: every rank refuses before a step.
mkdir -p "$WORK/other" && cp "$DATA"/x_64_*.npy "$DATA"/y_head_*.npy "$WORK/other/"
printf '\x01' | dd of="$WORK/other/y_head_train.npy" bs=1 seek=200 conv=notrunc status=none
# mpirun adds its own banner after MPI_Abort, so these errors are more than one line.
expect_mpi_error() {  # NAME WORDS CMD...: exit != 0 and stderr contains WORDS
  local name=$1 words=$2; shift 2
  "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  [ $rc -ne 0 ] && grep -qF -- "$words" "$WORK/err" && ok "$name" || bad "$name: rc $rc, $(head -3 "$WORK/err")"
}
expect_mpi_error "ranks with other data refused" "rank 1 has other data files" \
  mpirun --oversubscribe -np 1 "$MORPHOKD" --distributed mpi --threads 1 "${common[@]}" --out "$WORK/bad" : \
  -np 1 "$MORPHOKD" --distributed mpi --threads 1 "${common[@]/$DATA/$WORK/other}" --out "$WORK/bad"
check "refused run wrote nothing" test ! -e "$WORK/bad"
expect_mpi_error only_train_score "only train and score run across processes" mpi 2 eval --run "$WORK/np1"
expect_mpi_error empty_shard "cannot give each of the 4 ranks a group" mpi 4 "${common[@]}" --batch 12 --out "$WORK/e4"
expect_mpi_error not_deterministic "--distributed: needs --deterministic on" mpi 2 --deterministic off "${common[@]}" --out "$WORK/nd"

# A rank killed with SIGKILL mid-training: mpirun ends the job with an error within seconds.
# Far more epochs than run by the kill at 20 s (here not one), so no machine finishes first.
mpi 2 train --part head --data "$DATA" --teacher random:0 --student B --epochs 100 --out "$WORK/killed" >"$WORK/kout" 2>"$WORK/kerr" &
job=$!
sleep 20
victim=$(pgrep -f -- "--out $WORK/killed" | while read -r p; do [ "$(ps -o comm= -p "$p")" = morphokd ] && echo "$p"; done | tail -1)
[ -n "$victim" ] && kill -9 "$victim"
for _ in $(seq 120); do kill -0 $job 2>/dev/null || break; sleep 1; done
if kill -0 $job 2>/dev/null; then
  bad "job still running 120 s after a rank was killed"; pkill -9 -f -- "--out $WORK/killed"
else
  wait $job; rc=$?
  [ $rc -ne 0 ] && ok "killed rank ends the job (exit $rc)" || bad "killed rank: mpirun exited 0"
fi
finish mpi_cli
