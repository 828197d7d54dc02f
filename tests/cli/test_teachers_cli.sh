#!/usr/bin/env bash
# pretrain-teacher and the teacher / input / score options of train and eval (issue 4), driven
# as a user would: tiny pretrainings on both datasets, byte-identical resume, the exported
# teacher used by train, ensembles and score-rule overrides in eval, and one-line errors.
set -u
MORPHOKD=$1 FIXTURES=$2 DATA=$3 WORK=$4
FASHION=${FASHION:-/usr/share/datasets/fashion-mnist}
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
. "$(dirname "$0")/harness.sh"
T="$WORK/teachers"
tiny=(--limit 64 --batch 32 --threads 2)

# 1. Self-supervised pretraining: reproducible byte for byte, and resumable to the same bytes.
check "cells-ssl 2 epochs" "$MORPHOKD" pretrain-teacher --dataset cells-ssl --data "$DATA" --epochs 2 "${tiny[@]}" --out "$T/ssl.safetensors"
check "cells-ssl again" "$MORPHOKD" pretrain-teacher --dataset cells-ssl --data "$DATA" --epochs 2 "${tiny[@]}" --out "$T/ssl2.safetensors"
check "same seed = same bytes" cmp "$T/ssl.safetensors" "$T/ssl2.safetensors"
check "stop after epoch 1" "$MORPHOKD" pretrain-teacher --dataset cells-ssl --data "$DATA" --epochs 2 "${tiny[@]}" --stop-after 1 --out "$T/ssl3.safetensors"
check "stopped run wrote no teacher" test ! -e "$T/ssl3.safetensors"
check "resume to the end" "$MORPHOKD" pretrain-teacher --resume --threads 2 --out "$T/ssl3.safetensors"
check "resumed = uninterrupted" cmp "$T/ssl.safetensors" "$T/ssl3.safetensors"
check "log has 2 epochs" test "$(wc -l <"$T/ssl3.safetensors.log.jsonl")" -eq 2
check "plain VGG16 names, BN folded" "$FIXTURES" check-teacher "$T/ssl.safetensors"

# 2. Fashion-MNIST (Debian's IDX files), continued from the self-supervised teacher.
check "fashion-mnist from the ssl teacher" "$MORPHOKD" pretrain-teacher --dataset fashion-mnist --data "$FASHION" --epochs 1 \
  --init "$T/ssl.safetensors" "${tiny[@]}" --out "$T/fashion.safetensors"
check "fashion teacher differs" sh -c "! cmp -s '$T/ssl.safetensors' '$T/fashion.safetensors'"

# 3. The exported teacher, CLAHE and ImageNet input, and the score rules in train.
R="$WORK/runs"
check "train with the pretrained teacher" "$MORPHOKD" train --part head --data "$DATA" --teacher "$T/ssl.safetensors" --augment none \
  --input-norm clahe+image --score layer-z --tta flip --steps 2 --out "$R/ssl"
check "run.json keeps the calibration" grep -q '"layer_mean"' "$R/ssl/run.json"
check "eval test" "$MORPHOKD" eval --run "$R/ssl" --split test
check "eval json agrees with csv" "$FIXTURES" check-eval "$R/ssl" test
check "score uses the stored calibration" "$MORPHOKD" score --run "$R/ssl" --input "$DATA/x_64_test.npy" --out "$WORK/ssl_scores.csv"
# score's CSV (index,name,score,call) and eval's (index,label,score): the same numbers.
check "score = eval scores" bash -c "paste -d, <(cut -d, -f3 '$WORK/ssl_scores.csv') <(cut -d, -f3 '$R/ssl/scores_test.csv') | tail -n +2 |
  awk -F, '{d=\$1-\$2; if (d<0) d=-d; if (d > 1e-12*(\$2<0?-\$2:\$2)+1e-15) bad=1} END {exit bad}'"
check "imagenet input (3-channel teacher)" "$MORPHOKD" train --part head --data "$DATA" --teacher random:1:torch --input-norm imagenet \
  --augment none --steps 2 --out "$R/imagenet"
check "second run for an ensemble" "$MORPHOKD" train --part head --data "$DATA" --augment none --steps 2 --seed 1 --out "$R/seed1"

# 4. Ensembles and score-rule overrides in eval.
check "ensemble of 3 runs" "$MORPHOKD" eval --run "$R/ssl" --run "$R/imagenet" --run "$R/seed1" --split test --out "$R/ensemble"
check "ensemble json agrees with csv" "$FIXTURES" check-eval "$R/ensemble" test
check "override: sum, no flips" "$MORPHOKD" eval --run "$R/ssl" --score sum --tta none --split valid --out "$R/override"
check "override json agrees with csv" "$FIXTURES" check-eval "$R/override" valid

# 5. Bad input: one line naming the file or option, exit 1, nothing written.
expect_error bad_dataset "--dataset: unknown 'imagenet'" "$MORPHOKD" pretrain-teacher --dataset imagenet --out "$T/x.safetensors"
expect_error no_fashion "dataset-fashion-mnist" "$MORPHOKD" pretrain-teacher --dataset fashion-mnist --data "$WORK/none" --out "$T/x.safetensors"
expect_error teacher_exists "already exists" "$MORPHOKD" pretrain-teacher --data "$DATA" --out "$T/ssl.safetensors"
expect_error no_checkpoint "no checkpoint to resume from" "$MORPHOKD" pretrain-teacher --resume --out "$T/x.safetensors"
expect_error resume_options "--resume takes the configuration" "$MORPHOKD" pretrain-teacher --resume --lr 1 --out "$T/ssl3.safetensors"
head -c 1000 "$T/ssl.safetensors.checkpoint.safetensors" >"$T/cut.safetensors.checkpoint.safetensors"
expect_error corrupt_checkpoint "cut.safetensors.checkpoint.safetensors" "$MORPHOKD" pretrain-teacher --resume --out "$T/cut.safetensors"
check "no teacher from a corrupt checkpoint" test ! -e "$T/cut.safetensors"
expect_error bad_input_norm "--input-norm: unknown 'clahe+gamma'" "$MORPHOKD" train --data "$DATA" --input-norm clahe+gamma --out "$R/e1"
check "no run directory after a bad option" test ! -e "$R/e1"
expect_error bad_init "teacher spec 'random:0:he'" "$MORPHOKD" train --data "$DATA" --teacher random:0:he --out "$R/e2"
check "no run directory after a bad teacher" test ! -e "$R/e2"
expect_error bad_score "--score: unknown 'max'" "$MORPHOKD" eval --run "$R/ssl" --score max
expect_error bad_tta "--tta: unknown 'rot'" "$MORPHOKD" train --data "$DATA" --tta rot --out "$R/e3"
expect_error ensemble_out "an ensemble of runs needs --out" "$MORPHOKD" eval --run "$R/ssl" --run "$R/seed1"
check "vacuole run" "$MORPHOKD" train --part vacuole --data "$DATA" --augment none --steps 1 --out "$R/vacuole"
expect_error ensemble_parts "differs from the ensemble's 'head'" "$MORPHOKD" eval --run "$R/ssl" --run "$R/vacuole" --out "$R/e4"

finish teachers_cli
