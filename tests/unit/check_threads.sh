#!/usr/bin/env bash
# Every op and the teacher chain give the same bits at 1, 2, 3 and 4 threads in deterministic
# mode (both backends). Fast-mode differences are listed: they are why that mode exists.
set -u
PROBE=$1 WORK=$2
mkdir -p "$WORK"
for t in 1 2 3 4; do
  "$PROBE" "$t" >"$WORK/t$t.txt" || { echo "FAIL: thread_probe $t exited $?"; exit 1; }
done
lines=$(grep -c deterministic "$WORK/t1.txt")
[ "$lines" -ge 20 ] || { echo "FAIL: only $lines deterministic lines"; exit 1; }
status=0
for t in 2 3 4; do
  while IFS= read -r line; do
    echo "FAIL: differs at $t threads: ${line#> }"
    status=1
  done < <(diff <(grep deterministic "$WORK/t1.txt") <(grep deterministic "$WORK/t$t.txt") | grep '^>')
  diff <(grep ' fast ' "$WORK/t1.txt") <(grep ' fast ' "$WORK/t$t.txt") | grep '^>' | cut -d'|' -f1,2 |
    sed "s/^> /info: fast mode differs at $t threads: /"
done
[ $status -eq 0 ] && echo "ok: $lines deterministic results equal at 1, 2, 3 and 4 threads"
exit $status
