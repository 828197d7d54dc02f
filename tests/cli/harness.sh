# Shared by the CLI test scripts (sourced after they set WORK): counters and three checks.
#   check WHAT CMD...               CMD exits 0
#   expect_error NAME WORDS CMD...  exit != 0 and exactly one stderr line containing WORDS
#   finish NAME                     prints the counts; the status is 0 when nothing failed
#   slice_npy SRC DST N ROW SHAPE   the first N rows (ROW bytes each) of a uint8 .npy as DST
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@" >"$WORK/last.log" 2>&1; then ok "$what"; else bad "$what: $(tail -3 "$WORK/last.log")"; fi; }
expect_error() {
  local name=$1 words=$2; shift 2
  "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$? lines; lines=$(wc -l <"$WORK/err")
  if [ $rc -eq 0 ]; then bad "$name: exit 0"; elif [ "$lines" -ne 1 ]; then bad "$name: $lines stderr lines: $(head -3 "$WORK/err")"
  elif ! grep -qF -- "$words" "$WORK/err"; then bad "$name: '$(cat "$WORK/err")' lacks '$words'"; else ok "$name"; fi
}
finish() { echo "$1: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; }
slice_npy() {  # header padded to 128 bytes, as numpy writes it
  local hdr=$((10 + $(od -An -tu2 -j8 -N2 "$1")))
  { printf '\x93NUMPY\x01\x00\x76\x00'; printf '%-117s\n' "{'descr': '|u1', 'fortran_order': False, 'shape': $5, }"
    tail -c +$((hdr + 1)) "$1" | head -c $(($3 * $4)); } >"$2"
}
