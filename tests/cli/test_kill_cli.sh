#!/usr/bin/env bash
# Crash safety: training is killed with SIGKILL at KILLS random moments and resumed each
# time (alternating 1 and 2 threads). After every kill the run verifies (data, teacher,
# sealed checkpoint) and resumes; the final student equals an uninterrupted run's, byte for
# byte. Small head subset (100 train / 60 valid cells) so that many kills fit in minutes.
#   test_kill_cli.sh MORPHOKD DATA WORK [KILLS=50] [SEED=1]
set -u
MORPHOKD=$1 DATA=$2 WORK=$3 KILLS=${4:-50}
RANDOM=${5:-1}
rm -rf "$WORK" && mkdir -p "$WORK"
. "$(dirname "$0")/harness.sh"

SMALL="$WORK/data"
mkdir -p "$SMALL"
slice_npy "$DATA/x_64_train.npy" "$SMALL/x_64_train.npy" 100 4096 "(100, 64, 64)"
slice_npy "$DATA/y_head_train.npy" "$SMALL/y_head_train.npy" 100 1 "(100,)"
slice_npy "$DATA/x_64_valid.npy" "$SMALL/x_64_valid.npy" 60 4096 "(60, 64, 64)"
slice_npy "$DATA/y_head_valid.npy" "$SMALL/y_head_valid.npy" 60 1 "(60,)"
# Eight epochs per kill; the kill moments below let a launch advance about four at most, so
# the run outlasts the kills on any machine, however fast or loaded.
args=(train --part head --data "$SMALL" --student B --epochs $((8 * KILLS)) --augment none --tta none)

# The uninterrupted run also times this machine: start-up (data, teacher, target caches) to
# the first epoch line, then the mean epoch with its validation.
ms() { echo $(($(date +%s%N) / 1000000)); }
t0=$(ms)
"$MORPHOKD" --threads 2 "${args[@]}" --out "$WORK/ref" >"$WORK/ref.log" 2>&1 &
pid=$!
until grep -q '^epoch' "$WORK/ref.log" || ! kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
t1=$(ms)
wait "$pid" && ok "uninterrupted run" || bad "uninterrupted run: $(tail -3 "$WORK/ref.log")"
read -r STARTUP EPOCH < <(awk -v a=$((t1 - t0)) -v b=$(($(ms) - t1)) -v n=$((8 * KILLS - 1)) \
  'BEGIN { printf "%.3f %.3f\n", a / 1000, b / 1000 / n }')
echo "start-up ~${STARTUP} s, epoch ~${EPOCH} s"
rand_sleep() { sleep "$(awk -v r=$((RANDOM * 32768 + RANDOM)) -v m="$1" 'BEGIN { printf "%.3f", r / 1073741824 * m }')"; }
epochs_logged() { grep -c '^epoch' "$WORK/killed.log" 2>/dev/null; }

K="$WORK/killed"
launch() {  # a fresh start until run.json exists, then --resume
  local threads=$((1 + $1 % 2))
  if [ -f "$K/run.json" ]; then "$MORPHOKD" --threads "$threads" train --resume --out "$K" >>"$WORK/killed.log" 2>&1 &
  else "$MORPHOKD" --threads "$threads" "${args[@]}" --out "$K" >>"$WORK/killed.log" 2>&1 & fi
  pid=$!
}
kills=0 verified=0 unverified=0
launch 0
while [ "$kills" -lt "$KILLS" ]; do
  # The kill moment: k in 0..3 epochs into this launch, then uniform over the next stretch
  # (start-up and the first epoch when k = 0, one epoch otherwise): start-up, epochs and
  # checkpoint writes are all hit, and a launch advances k + ~1 epochs at most.
  k=$((RANDOM * 4 / 32768))
  if [ "$k" -eq 0 ]; then rand_sleep "$(awk "BEGIN { print $STARTUP + $EPOCH }")"
  else
    target=$(($(epochs_logged) + k))
    while kill -0 "$pid" 2>/dev/null && [ "$(epochs_logged)" -lt "$target" ]; do sleep 0.02; done
    rand_sleep "$EPOCH"
  fi
  if ! kill -0 "$pid" 2>/dev/null; then break; fi  # finished before this kill (reported below)
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  kills=$((kills + 1))
  if [ -f "$K/checkpoint.safetensors" ]; then
    if "$MORPHOKD" verify "$K" >"$WORK/verify.log" 2>&1; then verified=$((verified + 1))
    else unverified=$((unverified + 1)); bad "after kill $kills: $(tail -2 "$WORK/verify.log")"; fi
  fi
  launch "$kills"
done
wait "$pid"
rc=$?
echo "$kills kills, checkpoint verified after $verified of them"
[ "$kills" -eq "$KILLS" ] && ok "$kills kills" || bad "only $kills of $KILLS kills landed before the run finished"
[ "$unverified" -eq 0 ] && ok "every checkpoint left by a kill verified ($verified)" || bad "$unverified checkpoints failed verification"
[ "$rc" -eq 0 ] && ok "last resume finished" || bad "last resume exited $rc: $(tail -2 "$WORK/killed.log")"
check "killed run verifies" "$MORPHOKD" verify "$K"
check "student after $kills kills = uninterrupted" cmp "$WORK/ref/student.safetensors" "$K/student.safetensors"
finish kill_cli
