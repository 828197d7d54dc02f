#!/usr/bin/env bash
# train / eval / score / info / the embedding example, driven as a user would, on MHSMA:
# the end-to-end command, an independent recheck of the metrics, the audit replay against
# PyTorch, bitwise resume, and one-line errors for bad input.
set -u
MORPHOKD=$1 FIXTURES=$2 EMBED=$3 DATA=$4 GOLDEN=$5 WORK=$6
rm -rf "$WORK" && mkdir -p "$WORK" && "$FIXTURES" make "$WORK/fixtures" >/dev/null || exit 1
. "$(dirname "$0")/harness.sh"

# 1. The end-to-end command of the issue, then an independent recomputation of the metrics.
RUN="$WORK/head"
check "train head 3 epochs" "$MORPHOKD" train --part head --data "$DATA" --teacher random:0 --student B --epochs 3 --out "$RUN"
check "eval test" "$MORPHOKD" eval --run "$RUN" --split test
check "eval json agrees with csv" "$FIXTURES" check-eval "$RUN" test
check "eval valid (youden)" "$MORPHOKD" eval --run "$RUN" --split valid --threshold-rule youden
check "eval valid json agrees with csv" "$FIXTURES" check-eval "$RUN" valid
check "train log has 3 epochs" test "$(wc -l <"$RUN/train_log.jsonl")" -eq 3
check "run.json hashes" grep -q '"sha256"' "$RUN/run.json"

# 2. Scoring new cells: CLI, embedding API and eval agree on the same cells.
# The first 16 test cells as raw bytes, after the .npy header (10 + its stated length).
hdr=$((10 + $(od -An -tu2 -j8 -N2 "$DATA/x_64_test.npy")))
tail -c +$((hdr + 1)) "$DATA/x_64_test.npy" | head -c $((16 * 4096)) >"$WORK/cells16.u8"
check "score npy" "$MORPHOKD" score --run "$RUN" --input "$DATA/x_64_test.npy" --out "$WORK/scores.csv"
check "score csv has 300 rows" test "$(wc -l <"$WORK/scores.csv")" -eq 301
if "$EMBED" "$RUN" "$WORK/cells16.u8" >"$WORK/embed.txt" 2>"$WORK/err"; then
  # embed prints "i score call" after a header line; scores_test.csv lists the same cells first.
  if paste -d' ' <(tail -n +2 "$WORK/embed.txt" | awk '{print $2}') <(sed -n 2,17p "$RUN/scores_test.csv" | cut -d, -f3) |
     awk '{d=$1-$2; if (d<0) d=-d; if (d > 1e-7*($2<0?-$2:$2)+1e-12) bad=1} END {exit bad}'; then ok "embedding API = eval scores"
  else bad "embedding API scores differ"; fi
else bad "embed_example: $(cat "$WORK/err")"; fi
# Audit records: one line per cell, agreeing with the CSVs (tests/cli/cli_fixtures.cpp check-audit).
check "score --audit" "$MORPHOKD" score --run "$RUN" --input "$DATA/x_64_test.npy" --out "$WORK/scores_a.csv" --audit "$WORK/score_audit.jsonl"
check "score audit = score CSV" "$FIXTURES" check-audit "$WORK/score_audit.jsonl" "$WORK/scores_a.csv"
check "eval --audit" "$MORPHOKD" eval --run "$RUN" --split test --out "$WORK/eval_a" --audit "$WORK/eval_audit.jsonl"
check "eval audit = eval CSV" "$FIXTURES" check-audit "$WORK/eval_audit.jsonl" "$WORK/eval_a/scores_test.csv"
check "score and eval audit the same cell hashes" \
  cmp <(grep -o '"cell_sha256":"[0-9a-f]*"' "$WORK/score_audit.jsonl") <(grep -o '"cell_sha256":"[0-9a-f]*"' "$WORK/eval_audit.jsonl")
check "info student B" sh -c "'$MORPHOKD' info --student B | grep -q 'conv weights 343728'"

# 3. Audit replay: 2 Adam steps from given weights against PyTorch in float64 (the rule and its
#    tolerances are documented in cli_fixtures.cpp, check_replay).
REPLAY="$WORK/replay"
check "replay 2 steps" "$MORPHOKD" train --part head --data "$DATA" --teacher random:0 --student B \
  --student-init "$GOLDEN/replay_head_B_init.safetensors" --input-norm none --score-critical 3,4,5 --score sum --tta none \
  --no-shuffle --no-augment \
  --steps 2 --dump-grads --out "$REPLAY"
check "replay scores" "$MORPHOKD" score --run "$REPLAY" --input "$DATA/x_64_test.npy" --out "$WORK/replay_scores.csv"
check "replay matches PyTorch" "$FIXTURES" check-replay "$REPLAY" "$GOLDEN" "$WORK/replay_scores.csv"

# 4. Resume gives the same bytes as an uninterrupted run (same threads).
for aug in none flip,rotate; do
  A="$WORK/full_$aug" B="$WORK/resumed_$aug"
  "$MORPHOKD" train --part head --data "$DATA" --epochs 2 --augment "$aug" --threads 2 --out "$A" >/dev/null 2>&1
  "$MORPHOKD" train --part head --data "$DATA" --epochs 1 --augment "$aug" --threads 2 --out "$B" >/dev/null 2>&1
  "$MORPHOKD" train --resume --epochs 2 --threads 2 --out "$B" >/dev/null 2>&1
  check "resume = uninterrupted (augment $aug)" cmp "$A/student.safetensors" "$B/student.safetensors"
done

# 4a. Validation between epochs leaves the student's bytes alone (fast mode, whose training plan
#     validation frees): --valid-every 2 over 2 epochs validates after the second only.
for every in 1 2; do
  "$MORPHOKD" --deterministic off --threads 2 train --part head --data "$DATA" --epochs 2 --augment none --valid-every "$every" \
    --out "$WORK/valid_every_$every" >/dev/null 2>&1
done
check "--valid-every 2 trains the bytes of --valid-every 1" cmp "$WORK/valid_every_1/student.safetensors" "$WORK/valid_every_2/student.safetensors"
check "--valid-every 2: a valid AUC after epoch 2 only" \
  sh -c "grep -c valid_auc '$WORK/valid_every_2/train_log.jsonl' | grep -qx 1 && tail -1 '$WORK/valid_every_2/train_log.jsonl' | grep -q valid_auc"
check "--valid-every 1: a valid AUC after each epoch" sh -c "grep -c valid_auc '$WORK/valid_every_1/train_log.jsonl' | grep -qx 2"

# 4b. Cached teacher targets train exactly as recomputed ones (none: one per cell; flip: per variant).
for aug in none flip; do
  "$MORPHOKD" train --part head --data "$DATA" --augment "$aug" --steps 3 --threads 2 --out "$WORK/cached_$aug" >/dev/null 2>&1
  "$MORPHOKD" train --part head --data "$DATA" --augment "$aug" --steps 3 --threads 2 --cache-limit-gb 0 --out "$WORK/recomputed_$aug" >/dev/null 2>&1
  check "cached = recomputed teacher targets (augment $aug)" cmp "$WORK/cached_$aug/student.safetensors" "$WORK/recomputed_$aug/student.safetensors"
done

# 5. Bad input: one line naming the file or option, exit 1.
expect_error unknown_part "--part: unknown part 'neck'" "$MORPHOKD" train --part neck --data "$DATA" --out "$WORK/e1"
expect_error bad_teacher "--teacher: 'vgg.bin' is not random:SEED" "$MORPHOKD" train --teacher vgg.bin --data "$DATA" --out "$WORK/e2"
expect_error missing_teacher "absent.safetensors: cannot open" "$MORPHOKD" train --teacher "$WORK/absent.safetensors" --data "$DATA" --out "$WORK/e3"
expect_error bad_epochs "--epochs must be at least 1" "$MORPHOKD" train --epochs 0 --data "$DATA" --out "$WORK/e4"
expect_error bad_student "--student: unknown student 'Z'" "$MORPHOKD" train --student Z --data "$DATA" --out "$WORK/e5"
expect_error bad_augment "--augment: unknown augmentation 'blur'" "$MORPHOKD" train --augment blur --data "$DATA" --out "$WORK/e6"
expect_error missing_data "no such data folder" "$MORPHOKD" train --data "$WORK/nodata" --out "$WORK/e7"
expect_error run_exists "already holds a run" "$MORPHOKD" train --data "$DATA" --out "$RUN"
expect_error not_a_run "not a run directory" "$MORPHOKD" eval --run "$WORK"
expect_error bad_rule "--threshold-rule" "$MORPHOKD" eval --run "$RUN" --threshold-rule best
expect_error bad_split "--split: unknown split 'dev'" "$MORPHOKD" eval --run "$RUN" --split dev
expect_error resume_with_options "--resume takes the configuration" "$MORPHOKD" train --resume --lr 0.1 --out "$B"
# An empty class: a data folder whose test labels are all normal.
mkdir -p "$WORK/oneclass" && cp "$DATA"/x_64_*.npy "$DATA"/y_head_train.npy "$DATA"/y_head_valid.npy "$WORK/oneclass/"
yhdr=$((10 + $(od -An -tu2 -j8 -N2 "$DATA/y_head_test.npy")))
{ head -c "$yhdr" "$DATA/y_head_test.npy"; head -c $(($(stat -c %s "$DATA/y_head_test.npy") - yhdr)) /dev/zero; } >"$WORK/oneclass/y_head_test.npy"
expect_error one_class "AUC needs both normal and abnormal cells" "$MORPHOKD" eval --run "$RUN" --data "$WORK/oneclass"
# A student file changed after training is caught by its SHA-256.
cp -r "$RUN" "$WORK/tampered" && printf '\x01' | dd of="$WORK/tampered/student.safetensors" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect_error tampered "student.safetensors: SHA-256 differs from run.json" "$MORPHOKD" eval --run "$WORK/tampered"
# A full disk, simulated by a file-size limit (SIGXFSZ ignored, so write() fails with EFBIG):
# one line naming the file, and no temporary file left behind.
mkdir -p "$WORK/fsz"
expect_error file_too_large "scores.csv: write error: File too large" \
  bash -c "trap '' XFSZ; ulimit -f 4; exec '$MORPHOKD' score --run '$RUN' --input '$DATA/x_64_test.npy' --out '$WORK/fsz/scores.csv'"
check "nothing left after the failed write" test -z "$(ls -A "$WORK/fsz")"
expect_error audit_ensemble "--audit: records one run's decisions" "$MORPHOKD" eval --run "$RUN" --run "$RUN" --out "$WORK/ens" --audit "$WORK/a.jsonl"
expect_error nan_cells "non-finite pixel" "$MORPHOKD" score --run "$RUN" --input "$WORK/fixtures/nan_cells.npy" --out "$WORK/x.csv"
# 5b. Every other entry rule of the validation checklist (README): run files from a newer
#     format or with an out-of-range configuration, empty folders, wrong cell sizes, option
#     ranges, a teacher whose shapes do not fit; and nothing written by a refused command.
cp -r "$RUN" "$WORK/newer" && sed -i 's/"format_version": 1/"format_version": 99/' "$WORK/newer/run.json"
expect_error newer_run "run.json: format version 99 is newer than this morphokd reads" "$MORPHOKD" eval --run "$WORK/newer"
cp -r "$RUN" "$WORK/badcfg" && sed -i 's/"epochs": 3/"epochs": 0/' "$WORK/badcfg/run.json"
expect_error run_config "run.json: bad configuration: --epochs must be at least 1" "$MORPHOKD" eval --run "$WORK/badcfg"
mkdir -p "$WORK/emptydir"
expect_error empty_folder "emptydir: no PNG/JPEG/TIFF/BMP images" "$MORPHOKD" score --run "$RUN" --input "$WORK/emptydir" --out "$WORK/v1.csv"
slice_npy "$DATA/x_64_test.npy" "$WORK/cells32.npy" 4 4096 "(8, 32, 64)"
expect_error wrong_size "cells32.npy: cells must be 64 x 64, got 32 x 64" "$MORPHOKD" score --run "$RUN" --input "$WORK/cells32.npy" --out "$WORK/v2.csv"
expect_error lr_range "--lr must be positive" "$MORPHOKD" train --lr -1 --data "$DATA" --out "$WORK/v3"
expect_error lambda_nan "--lambda must be >= 0 and finite" "$MORPHOKD" train --lambda nan --data "$DATA" --out "$WORK/v4"
expect_error batch_one "--batch must be at least 2" "$MORPHOKD" train --batch 1 --data "$DATA" --out "$WORK/v5"
expect_error valid_every "--valid-every must be >= 0" "$MORPHOKD" train --valid-every -1 --data "$DATA" --out "$WORK/v9"
expect_error cache_limit "--cache-limit-gb must be >= 0" "$MORPHOKD" train --cache-limit-gb -1 --data "$DATA" --out "$WORK/v6"
expect_error critical_pool "--train-critical: pool 1 of student A has 16 channels" "$MORPHOKD" train --student A --train-critical 1,2 --data "$DATA" --out "$WORK/v7"
expect_error threads_zero "--threads" "$MORPHOKD" --threads 0 info --student B
expect_error teacher_shapes "wrongshape.safetensors: tensor 'features.2.weight' has shape" \
  "$MORPHOKD" train --teacher "$WORK/fixtures/wrongshape.safetensors" --data "$DATA" --out "$WORK/v8"
check "refused commands wrote nothing" sh -c "! ls -d '$WORK'/v[0-9]* 2>/dev/null | grep -q ."

# 6. verify: a finished run verifies; one flipped byte in any file it references is reported.
#    The run is copied with its data files, and run.json pointed at the copies.
V="$WORK/verify" VD="$WORK/verify_data"
mkdir -p "$VD" && cp "$DATA"/x_64_train.npy "$DATA"/x_64_valid.npy "$DATA"/y_head_train.npy "$DATA"/y_head_valid.npy "$VD/"
cp -r "$RUN" "$V" && sed -i "s|\"path\": \"$DATA/|\"path\": \"$VD/|" "$V/run.json"
check "verify a finished run" "$MORPHOKD" verify "$V"
check "verify covers data, teacher, student, checkpoint, log, scores" \
  sh -c "'$MORPHOKD' verify '$V' | grep -c '^ok' | grep -qx 11"
flip() {  # flip FILE OFFSET: complement one byte in place
  local b; b=$(od -An -tu1 -j"$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
for f in "$VD"/x_64_train.npy "$VD"/y_head_valid.npy "$V"/student.safetensors "$V"/checkpoint.safetensors \
         "$V"/train_log.jsonl "$V"/scores_test.csv; do
  off=$(($(stat -c %s "$f") / 2))
  flip "$f" "$off"
  expect_error "verify: flipped byte in $(basename "$f")" "fail verification" "$MORPHOKD" verify "$V"
  grep -q "^MISMATCH.*$(basename "$f")" "$WORK/out" && ok "verify names $(basename "$f")" || bad "verify did not name $(basename "$f")"
  flip "$f" "$off"
done
check "verify passes again once restored" "$MORPHOKD" verify "$V"
expect_error "verify: not a run" "not a run directory" "$MORPHOKD" verify "$WORK"

finish train_cli
