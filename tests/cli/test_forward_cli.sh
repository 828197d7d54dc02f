#!/usr/bin/env bash
# `morphokd forward`: a good run on both backends, and every bad input ends as one stderr
# line naming the file, a non-zero exit, and no dump directory.
set -u
MORPHOKD=$1 FIXTURES=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK" && "$FIXTURES" make "$WORK/in" || exit 1
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

# expect_error NAME WORDS ARGS...: exit != 0, exactly one stderr line containing WORDS, no dump.
expect_error() {
  local name=$1 words=$2; shift 2
  local dump=${DUMP:-$WORK/dump_$name}
  "$MORPHOKD" forward --dump "$dump" "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$? lines; lines=$(wc -l <"$WORK/err")
  if [ $rc -eq 0 ]; then bad "$name: exit 0"; return; fi
  if [ "$lines" -ne 1 ]; then bad "$name: $lines stderr lines: $(cat "$WORK/err")"; return; fi
  if ! grep -qF -- "$words" "$WORK/err"; then bad "$name: '$(cat "$WORK/err")' lacks '$words'"; return; fi
  if [ -z "${DUMP:-}" ] && ls -d "$dump"* >/dev/null 2>&1; then bad "$name: left a dump directory"; return; fi
  ok
}

W="$WORK/in/vgg16.safetensors" X="$WORK/in/x.npy"
for backend in reference onednn; do
  if ! "$MORPHOKD" --version | grep -q onednn && [ $backend = onednn ]; then continue; fi
  if "$MORPHOKD" forward --model vgg16 --weights "$W" --input "$X" --dump "$WORK/dump_$backend" --backend $backend --threads 2 >/dev/null \
     && [ "$(ls "$WORK/dump_$backend"/features.*.npy | wc -l)" -eq 31 ] && grep -q "backend $backend" "$WORK/dump_$backend/kernels.txt"; then ok
  else bad "good run on $backend"; fi
done
# MHSMA layout (N x 64 x 64 uint8 gray cells, first 3 only, random teacher) equals the
# same cells given as N x 3 x 64 x 64 floats x/255, bit for bit.
if "$MORPHOKD" forward --weights random:0 --input "$WORK/in/cells_u8.npy" --limit 3 --dump "$WORK/dump_cells" >/dev/null \
   && "$MORPHOKD" forward --weights random:0 --input "$WORK/in/cells_rgb.npy" --dump "$WORK/dump_rgb" >/dev/null \
   && "$FIXTURES" compare "$WORK/dump_rgb" "$WORK/dump_cells" 0 >/dev/null; then ok; else bad "gray uint8 cells"; fi
if [ -d "$WORK/dump_onednn" ]; then
  if "$FIXTURES" compare "$WORK/dump_reference" "$WORK/dump_onednn" 1e-4 >/dev/null; then ok; else bad "backends disagree"; fi
fi

expect_error missing_input "$WORK/in/absent.npy: cannot open" --weights "$W" --input "$WORK/in/absent.npy"
expect_error truncated_input "truncated.npy: truncated data" --weights "$W" --input "$WORK/in/truncated.npy"
expect_error nan_input "nan.npy: non-finite value" --weights "$W" --input "$WORK/in/nan.npy"
expect_error rank2_input "rank2.npy: expected an N x 3 x H x W array" --weights "$W" --input "$WORK/in/rank2.npy"
expect_error gray_input "gray.npy: expected an N x 3 x H x W array" --weights "$W" --input "$WORK/in/gray.npy"
expect_error small_input "small.npy: VGG16's five 2x2 pools need H, W >= 32" --weights "$W" --input "$WORK/in/small.npy"
expect_error weights_not_st "x.npy: safetensors header of" --weights "$X" --input "$X"
expect_error missing_weights "absent.safetensors: cannot open" --weights "$WORK/in/absent.safetensors" --input "$X"
expect_error truncated_weights "truncated.safetensors: " --weights "$WORK/in/truncated.safetensors" --input "$X"
expect_error missing_tensor "missing.safetensors: missing tensor 'features.28.bias'" --weights "$WORK/in/missing.safetensors" --input "$X"
expect_error wrong_shape "wrongshape.safetensors: tensor 'features.2.weight' has shape" --weights "$WORK/in/wrongshape.safetensors" --input "$X"
expect_error bad_random_spec "teacher spec 'random:x1'" --weights random:x1 --input "$X"
expect_error unknown_model "unknown model 'resnet'" --weights "$W" --input "$X" --model resnet
DUMP="$WORK/dump_reference" expect_error existing_dump "dump_reference: already exists" --weights "$W" --input "$X"
MORPHOKD_BACKEND=bogus expect_error bad_backend_env "MORPHOKD_BACKEND: unknown backend 'bogus'" --weights "$W" --input "$X"

echo "cli_forward: $passed passed, $failed failed"
[ $failed -eq 0 ]
