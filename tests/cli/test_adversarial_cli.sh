#!/usr/bin/env bash
# FGSM and localization (issue 5) driven as a user would: adversarial training (both mixes),
# attack in both directions, eval's robustness curve, localization maps by every method,
# SmoothGrad reproducibility, and one-line errors that leave no output behind.
set -u
MORPHOKD=$1 FIXTURES=$2 DATA=$3 WORK=$4
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
. "$(dirname "$0")/harness.sh"
R="$WORK/runs" TEST="$DATA/x_64_test.npy"
tiny=(--part head --data "$DATA" --augment none --tta none --threads 2)

# 1. Adversarial training end to end: each batch with its attacked copy, or the copy alone.
check "train --fgsm-eps (both)" "$MORPHOKD" train "${tiny[@]}" --fgsm-eps 0.01 --steps 2 --out "$R/fgsm"
check "run.json records it" grep -q '"fgsm_eps": 0.01' "$R/fgsm/run.json"
check "train --fgsm-mix adv" "$MORPHOKD" train "${tiny[@]}" --fgsm-eps 0.01 --fgsm-mix adv --steps 2 --out "$R/adv"
check "the mixes train differently" sh -c "! cmp -s '$R/fgsm/student.safetensors' '$R/adv/student.safetensors'"

# 2. attack: within eps of the cells, in [0, 1]; raising raises the score of >= 95 % of cells
# (a small step: this 2-step student's score is far from linear at eps 0.01).
check "attack raise" "$MORPHOKD" attack --run "$R/fgsm" --input "$TEST" --eps 0.002 --out "$WORK/raised.npy" --figure "$WORK/fgsm.png"
rose=$(sed -n 's/.*rose for [0-9]* (\([0-9.]*\)%).*/\1/p' "$WORK/last.log")
check "raise raised >= 95 % ($rose %)" awk -v p="${rose:-0}" 'BEGIN { exit !(p >= 95) }'
check "attacked cells within eps" "$FIXTURES" check-fgsm "$TEST" "$WORK/raised.npy" 0.002
check "FGSM figure" test -s "$WORK/fgsm.png"
check "attack lower" "$MORPHOKD" attack --run "$R/fgsm" --input "$WORK/raised.npy" --eps 0.005 --direction lower --out "$WORK/lowered.npy"
check "lowered cells within eps" "$FIXTURES" check-fgsm "$WORK/raised.npy" "$WORK/lowered.npy" 0.005

# 3. eval --robustness: one AUC per eps in the JSON, and the plot.
check "eval --robustness" "$MORPHOKD" eval --run "$R/fgsm" --split test --robustness 0,0.01 --out "$WORK/robust"
check "two robustness points" test "$(grep -c '"eps"' "$WORK/robust/eval_test.json")" -eq 2
check "robustness plot" test -s "$WORK/robust/robustness_test.png"

# 4. localize: raw maps by each method; SmoothGrad is the same for the same seed.
M="$WORK/maps"
loc=(localize --run "$R/fgsm" --split test --label 1 --limit 3)
check "localize grad" "$MORPHOKD" "${loc[@]}" --out "$M/grad"
check "grad maps" "$FIXTURES" check-maps "$M/grad" 3
check "grid and record" test -s "$M/grad/grid.png" -a -s "$M/grad/localize.json"
check "localize gbp" "$MORPHOKD" "${loc[@]}" --method gbp --out "$M/gbp"
check "gbp maps differ from grad" sh -c "! cmp -s '$M/grad/2.npy' '$M/gbp/2.npy'"
check "localize mkd channels" "$MORPHOKD" "${loc[@]}" --channels mkd --out "$M/mkd"
check "mkd maps" "$FIXTURES" check-maps "$M/mkd" 3
for k in 1 2; do check "smoothgrad $k" "$MORPHOKD" "${loc[@]}" --method smoothgrad --n 3 --seed 7 --out "$M/sg$k"; done
check "smoothgrad reproducible" sh -c "for f in '$M'/sg1/*.npy; do cmp -s \"\$f\" '$M'/sg2/\$(basename \"\$f\") || exit 1; done"

# 5. Bad input: one line, non-zero exit, nothing written.
expect_error eps_negative "--eps: epsilon must be in [0, 1]" "$MORPHOKD" attack --run "$R/fgsm" --input "$TEST" --eps -0.1 --out "$WORK/x.npy"
expect_error eps_above_one "--eps: epsilon must be in [0, 1]" "$MORPHOKD" attack --run "$R/fgsm" --input "$TEST" --eps 1.5 --out "$WORK/x.npy"
expect_error direction "--direction: unknown 'up'" "$MORPHOKD" attack --run "$R/fgsm" --input "$TEST" --direction up --out "$WORK/x.npy"
check "no attack output" test ! -e "$WORK/x.npy"
mkdir -p "$R/empty" && cp "$R/fgsm/run.json" "$R/empty/"
expect_error no_student "run directory has no student.safetensors" "$MORPHOKD" attack --run "$R/empty" --input "$TEST" --out "$WORK/x.npy"
expect_error no_student_localize "run directory has no student.safetensors" "$MORPHOKD" localize --run "$R/empty" --split test --out "$M/x"
expect_error unknown_method "--method: unknown 'occlusion'" "$MORPHOKD" "${loc[@]}" --method occlusion --out "$M/x"
expect_error smoothgrad_n "--n: SmoothGrad needs at least one noisy copy" "$MORPHOKD" "${loc[@]}" --method smoothgrad --n 0 --out "$M/x"
expect_error blur "--blur-sigma must be a finite number >= 0" "$MORPHOKD" "${loc[@]}" --blur-sigma -1 --out "$M/x"
expect_error maps_exist "already exists" "$MORPHOKD" "${loc[@]}" --out "$M/grad"
expect_error input_and_split "either --input or --split" "$MORPHOKD" "${loc[@]}" --input "$TEST" --out "$M/x"
check "no partial map folders" sh -c "! ls -d '$M'/x* 2>/dev/null | grep -q ."
expect_error train_eps "--fgsm-eps: epsilon must be in [0, 1]" "$MORPHOKD" train "${tiny[@]}" --fgsm-eps 2 --out "$R/bad"
expect_error train_mix "--fgsm-mix: unknown 'half'" "$MORPHOKD" train "${tiny[@]}" --fgsm-eps 0.01 --fgsm-mix half --out "$R/bad"
expect_error robustness_value "--robustness: 'x' is not a number" "$MORPHOKD" eval --run "$R/fgsm" --robustness 0,x
expect_error robustness_ensemble "not an ensemble" "$MORPHOKD" eval --run "$R/fgsm" --run "$R/adv" --robustness 0 --out "$WORK/e"
check "no run for bad options" test ! -e "$R/bad"
finish cli_adversarial
