#!/usr/bin/env bash
# `morphokd experiment` and `morphokd report` end to end on MHSMA: a two-study grid whose
# shared cell is trained once, a cell equal to the run train + eval make alone (the teacher
# memo changes no bit), finished cells skipped on a rerun, a run killed mid-cell and
# resumed, bad configurations refused with nothing written, a failing cell naming itself,
# and the report (every analysis of the grid, PNGs, same bytes twice, README section).
set -u
MORPHOKD=$1 DATA=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK"
. "$(dirname "$0")/harness.sh"
OUT="$WORK/exp"

# head at λ 0.01 is in both studies: 2 cells, not 3. One epoch, no flips: about a minute.
config() {  # config LAMBDAS: the grid with these λ values for the second study
  cat <<EOF
{"format": "morphokd-experiment", "format_version": 1, "description": "cli test",
 "train": {"epochs": 1, "augment": "none", "tta": "none"}, "eval": {"bootstrap": 100},
 "studies": [
   {"name": "main", "analyses": ["table2", "table3", "table4", "table5", "fig5", "fig13", "roc"], "grid": {"part": ["head"]}},
   {"name": "lambda", "analyses": ["table6"], "grid": {"part": ["head"], "lambda": [$1]}}]}
EOF
}
config "0.01, 1" >"$WORK/exp.json"
config "0.01, 1, 0.1" >"$WORK/exp3.json"

check "--dry-run lists 2 cells" bash -c "'$MORPHOKD' experiment --config '$WORK/exp.json' --out '$OUT' --dry-run | tail -1 | grep -qx '2 cells in 2 studies, 2 epochs in all'"
check "--dry-run writes nothing" test ! -e "$OUT"
# The shipped files parse, with the cell and epoch counts the README states.
SHIPPED="$(dirname "$0")/../../data/experiments"
check "smoke.json: 11 cells" bash -c "'$MORPHOKD' experiment --config '$SHIPPED/smoke.json' --data '$DATA' --out '$OUT' --dry-run | tail -1 | grep -qx '11 cells in 5 studies, 11 epochs in all'"
check "paper.json: 51 cells" bash -c "'$MORPHOKD' experiment --config '$SHIPPED/paper.json' --data '$DATA' --out '$OUT' --dry-run | tail -1 | grep -qx '51 cells in 5 studies, 531 epochs in all'"
check "precision.json: 12 cells" bash -c "'$MORPHOKD' experiment --config '$SHIPPED/precision.json' --data '$DATA' --out '$OUT' --dry-run | tail -1 | grep -qx '12 cells in 1 study, 180 epochs in all'"
check "experiment: 2 studies" "$MORPHOKD" --threads 2 experiment --config "$WORK/exp.json" --data "$DATA" --out "$OUT"
cp "$WORK/last.log" "$WORK/first.log"
check "3 cells declared, 2 trained (one shared)" grep -q "^2 cells in 2 studies$" "$WORK/first.log"
check "a line per finished cell" grep -Eq '^\[2/2\] head-B-s0-[0-9a-f]{8}: valid AUC 0\.[0-9]{4}, test AUC 0\.[0-9]{4}' "$WORK/first.log"
check "2 cells finished" test "$(ls "$OUT"/runs/*/cell.json | wc -l)" -eq 2
check "experiment.json records the command" grep -q '"command": ".*experiment --config' "$OUT/experiment.json"
cell=$(ls -d "$OUT"/runs/*/ | head -1)
check "cell.json AUC = eval_test.json AUC" bash -c "[ \"\$(grep -o '\"test_auc\": [0-9.e-]*' $cell/cell.json | cut -d' ' -f2)\" = \
  \"\$(grep -o '\"auc\": [0-9.e-]*' $cell/eval_test.json | cut -d' ' -f2)\" ]"
check "training printed to the cell's log" grep -q "epoch   1/1" "${cell%/}.log"

# A cell is the run `train` + `eval` make alone: the experiment's shared teacher maps change no bit.
lam1=$(dirname "$(grep -l '"lambda": "1"' "$OUT"/runs/*/cell.json)")
check "train alone, λ 1" "$MORPHOKD" --threads 2 train --part head --data "$DATA" --epochs 1 --augment none --tta none \
  --lambda 1 --out "$WORK/alone"
check "eval alone, test" "$MORPHOKD" --threads 2 eval --run "$WORK/alone" --split test --bootstrap 100
check "student = the cell's" cmp "$WORK/alone/student.safetensors" "$lam1/student.safetensors"
check "test scores = the cell's" cmp "$WORK/alone/scores_test.csv" "$lam1/scores_test.csv"

student_before=$(sha256sum "$cell/student.safetensors")
check "rerun: nothing to do" "$MORPHOKD" --threads 2 experiment --config "$WORK/exp.json" --data "$DATA" --out "$OUT"
cp "$WORK/last.log" "$WORK/rerun.log"
check "rerun reports both finished" grep -q "2 already finished" "$WORK/rerun.log"
check "rerun trains nothing" bash -c "! grep -q '^\[' '$WORK/rerun.log'"
check "student untouched" test "$student_before" = "$(sha256sum "$cell/student.safetensors")"

# An evaluated cell whose cell.json is lost is evaluated again, not retrained.
rm "$cell/cell.json" "$cell/eval_test.json"
check "lost results: evaluated again" "$MORPHOKD" --threads 2 experiment --config "$WORK/exp.json" --data "$DATA" --out "$OUT"
check "... without training" test "$student_before" = "$(sha256sum "$cell/student.safetensors")"
check "... and finished" test -f "$cell/cell.json"

# A third λ, killed while it trains, then resumed to the end.
"$MORPHOKD" --threads 2 experiment --config "$WORK/exp3.json" --data "$DATA" --out "$OUT" >"$WORK/killed.log" 2>&1 &
pid=$!
for _ in $(seq 3000); do
  new=$(ls "$OUT"/runs/*.log | xargs grep -l "teacher targets" 2>/dev/null | wc -l)
  [ "$new" -ge 3 ] && break
  sleep 0.1
done
kill -9 $pid; wait $pid 2>/dev/null
check "killed before the third cell finished" test "$(ls "$OUT"/runs/*/cell.json | wc -l)" -eq 2
check "resumed: the grid finishes" "$MORPHOKD" --threads 2 experiment --config "$WORK/exp3.json" --data "$DATA" --out "$OUT"
check "3 cells finished" test "$(ls "$OUT"/runs/*/cell.json | wc -l)" -eq 3

# Refusals: one line naming the file, nothing created.
expect_error "missing config" "$WORK/none.json" "$MORPHOKD" experiment --config "$WORK/none.json" --out "$WORK/x1"
echo '{"format": "morphokd-experiment", "format_version": 1, "train": {"colour": 1}, "studies": []}' >"$WORK/bad.json"
expect_error "unknown option" "bad.json: train: unknown training option 'colour'" \
  "$MORPHOKD" experiment --config "$WORK/bad.json" --out "$WORK/x2"
check "nothing written for refused configs" bash -c "! ls -d '$WORK'/x1 '$WORK'/x2 2>/dev/null"
config "0.5" >"$WORK/missing_data.json"
expect_error "a failing cell names itself and its log" "cell head-B-s0-" \
  "$MORPHOKD" experiment --config "$WORK/missing_data.json" --data "$WORK/no_such_data" --out "$WORK/x3"

# The report: every analysis of the grid, figures, the same bytes twice.
check "report" "$MORPHOKD" report "$OUT"
R="$OUT/report/report.md"
for label in "## Table 2" "## Table 3" "## Table 4" "## Fig. 5" "## Fig. 13 and Table 5" "## ROC" "## Table 6" "## Commands"; do
  check "report has $label" grep -qF "$label" "$R"
done
check "report names each study's cells and epochs" grep -qF 'Cells: study `main` (1 cell, 1 epoch, see Commands)' "$R"
check "Table 6 lists the three λ" bash -c "grep -c '^| lambda ' '$R' | grep -qx 3"
for png in roc.png fig5_head.png fig13_head.png; do
  check "$png is a PNG" bash -c "head -c 8 '$OUT/report/$png' | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a'"
done
cp "$R" "$WORK/report1.md"
check "report again" "$MORPHOKD" report "$OUT"
check "same report bytes" cmp "$R" "$WORK/report1.md"
printf '# Project\n<!-- morphokd report: begin -->\nold\n<!-- morphokd report: end -->\nend\n' >"$WORK/README.md"
check "report --readme" "$MORPHOKD" report "$OUT" --out "$WORK/results" --readme "$WORK/README.md"
check "README section replaced" grep -q "^#### Table 2" "$WORK/README.md"
check "README links the figures" grep -qF "](results/roc.png)" "$WORK/README.md"
printf '# no markers\n' >"$WORK/plain.md"
expect_error "README without markers" "plain.md: needs one line" "$MORPHOKD" report "$OUT" --out "$WORK/results2" --readme "$WORK/plain.md"
check "README without markers unchanged" grep -qx "# no markers" "$WORK/plain.md"
expect_error "report of no experiment" "not an experiment folder" "$MORPHOKD" report "$WORK/none"
finish cli_experiment
