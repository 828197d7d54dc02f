#!/usr/bin/env bash
# Builds morphokd fully static without oneDNN and OpenCV, checks the binary is static, and
# that its reference-backend dumps equal the main build's bit for bit.
set -eu
SRC=$1 MAIN_CLI=$2 FIXTURES=$3 WORK=$4
rm -rf "$WORK" && mkdir -p "$WORK"
cmake -S "$SRC" -B "$WORK/build" -DMORPHOKD_WITH_ONEDNN=OFF -DMORPHOKD_WITH_OPENCV=OFF -DMORPHOKD_STATIC=ON \
      -DMORPHOKD_BUILD_TESTS=OFF -DMORPHOKD_BUILD_PERF=OFF >"$WORK/configure.log"
cmake --build "$WORK/build" -j2 >"$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log"; exit 1; }
STATIC="$WORK/build/apps/morphokd"
file "$STATIC" | grep -q "statically linked" || { echo "not a static binary: $(file "$STATIC")"; exit 1; }
"$STATIC" --version | grep -q "oneDNN compiled out"
"$FIXTURES" make "$WORK/in"
"$STATIC" forward --weights "$WORK/in/vgg16.safetensors" --input "$WORK/in/x.npy" --dump "$WORK/static" --backend reference >/dev/null
"$MAIN_CLI" forward --weights "$WORK/in/vgg16.safetensors" --input "$WORK/in/x.npy" --dump "$WORK/main" --backend reference >/dev/null
"$FIXTURES" compare "$WORK/main" "$WORK/static" 0
# Asking for the compiled-out backend is a one-line error, not a crash.
if "$STATIC" forward --weights "$WORK/in/vgg16.safetensors" --input "$WORK/in/x.npy" --dump "$WORK/x" --backend onednn 2>"$WORK/err"; then exit 1; fi
grep -q "not compiled into this build" "$WORK/err"
echo "static build: ok"
