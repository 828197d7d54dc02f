#!/usr/bin/python3
"""Acceptance check: morphokd's VGG16 forward vs torchvision, layer by layer.

    /usr/bin/python3 tools/vgg16_torchvision_parity.py --morphokd BUILD/apps/morphokd \
        [--backends onednn,reference] [--batch 2] [--size 64] [--seed 0] [--workdir DIR]

Builds torchvision's vgg16 (random init from torch.manual_seed(seed), no download),
saves its full state_dict to WORKDIR/vgg16.safetensors and a random input to
WORKDIR/x.npy, computes every `features` module output (0..30) in float64, then runs

    MORPHOKD forward --model vgg16 --weights WORKDIR/vgg16.safetensors \
        --input WORKDIR/x.npy --dump WORKDIR/dump_BACKEND --backend BACKEND

for each backend and compares WORKDIR/dump_BACKEND/features.{i}.npy against torch with
rel = max|ours - torch| / max|torch|. Exits 1 if any rel > --tol (1e-4), if a dump is
missing or has the wrong shape, or if morphokd fails. Needs torch + torchvision; not
run by ctest. Without --workdir a temporary directory is used and removed afterwards.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

NUM_FEATURES = 31  # vgg16().features has modules 0..30


def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer (F32/I64), tensors laid out in dict order."""
    codes = {torch.float32: "F32", torch.int64: "I64"}
    header, arrays, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        a = t.numpy()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        arrays.append(a)
        offset += a.nbytes
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * (-(8 + len(hdr)) % 8)
    assert sys.byteorder == "little"
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for a in arrays:
            f.write(memoryview(a.reshape(-1)).cast("B"))


def torch_reference(seed, batch, size, workdir):
    """Writes the weights and input, returns (module kinds, float32 outputs of features.i)."""
    import torchvision
    torch.manual_seed(seed)
    model = torchvision.models.vgg16(weights=None).eval()
    x = torch.rand(batch, 3, size, size)
    state = {k: v for k, v in model.state_dict().items()}
    for k, v in state.items():
        assert v.dtype == torch.float32, k
    write_safetensors(os.path.join(workdir, "vgg16.safetensors"), state)
    np.save(os.path.join(workdir, "x.npy"), x.numpy().astype(np.float32))

    features = model.features.double()
    assert len(features) == NUM_FEATURES
    kinds, outs = [], []
    h = x.double()
    with torch.no_grad():
        for mod in features:
            h = mod(h)
            kinds.append(type(mod).__name__)
            outs.append(h.to(torch.float32).numpy().copy())
    return kinds, outs


def run_morphokd(exe, backend, workdir):
    dump = os.path.join(workdir, f"dump_{backend}")
    if os.path.exists(dump):
        shutil.rmtree(dump)
    cmd = [exe, "forward", "--model", "vgg16",
           "--weights", os.path.join(workdir, "vgg16.safetensors"),
           "--input", os.path.join(workdir, "x.npy"),
           "--dump", dump, "--backend", backend]
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.time()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        print(f"  cannot run morphokd: {e}")
        return dump, False
    print(f"  exit {proc.returncode} after {time.time() - t0:.1f}s")
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:])
        sys.stdout.write(proc.stderr[-4000:])
    return dump, proc.returncode == 0


def compare_dump(dump, refs):
    """Returns (list of rel or error string per layer, list of problems)."""
    if not os.path.isdir(dump):
        return ["missing"] * len(refs), [f"no dump directory {dump}"]
    results, problems = [], []
    for i, ref in enumerate(refs):
        path = os.path.join(dump, f"features.{i}.npy")
        if not os.path.isfile(path):
            results.append("missing")
            problems.append(f"features.{i}: missing {path}")
            continue
        try:
            ours = np.load(path)
        except (OSError, ValueError) as e:
            results.append("unreadable")
            problems.append(f"features.{i}: cannot load {path}: {e}")
            continue
        if ours.shape != ref.shape:
            results.append(f"shape {list(ours.shape)}")
            problems.append(f"features.{i}: shape {list(ours.shape)}, expected {list(ref.shape)}")
            continue
        if ours.dtype != np.float32:
            print(f"  note: features.{i} is {ours.dtype}, expected float32")
        ref64, ours64 = ref.astype(np.float64), ours.astype(np.float64)
        denom = np.max(np.abs(ref64))
        err = np.max(np.abs(ours64 - ref64))
        rel = err / denom if denom > 0 else err
        results.append(float(rel))
    return results, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--morphokd", required=True, help="path to the morphokd CLI")
    ap.add_argument("--backends", default="onednn,reference")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", help="keep files here (default: a temporary directory)")
    ap.add_argument("--tol", type=float, default=1e-4, help="max allowed rel per layer")
    args = ap.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    if args.size < 32:
        ap.error("--size must be >= 32 (five 2x2 max-pools)")

    tmp = None
    workdir = args.workdir
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="vgg16_parity_")
        workdir = tmp.name
    os.makedirs(workdir, exist_ok=True)
    try:
        return run(args, backends, os.path.abspath(workdir))
    finally:
        if tmp is not None:
            tmp.cleanup()


def run(args, backends, workdir):
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"workdir {workdir}; torch reference (seed {args.seed}, batch {args.batch}, "
          f"size {args.size}) ...", flush=True)
    kinds, refs = torch_reference(args.seed, args.batch, args.size, workdir)

    results, failed = {}, False
    for b in backends:
        dump, ok = run_morphokd(os.path.abspath(args.morphokd), b, workdir)
        results[b], problems = compare_dump(dump, refs)
        if not ok:
            problems.insert(0, "morphokd exited with an error")
        for p in problems:
            print(f"  [{b}] {p}")
        failed |= bool(problems)

    def cell(v):
        return f"{v:.3e}" if isinstance(v, float) else v

    w = max(12, *(len(b) for b in backends))
    print()
    print(f"{'layer':<22} {'shape':<20} " + " ".join(f"{b:>{w}}" for b in backends))
    for i, ref in enumerate(refs):
        row = f"features.{i:<2} {kinds[i]:<10} {str(list(ref.shape)):<20} "
        row += " ".join(f"{cell(results[b][i]):>{w}}" for b in backends)
        print(row)
    print()
    for b in backends:
        rels = [v for v in results[b] if isinstance(v, float)]
        bad = [i for i, v in enumerate(results[b]) if not isinstance(v, float) or not v <= args.tol]
        worst = f"{max(rels, key=lambda v: (np.isnan(v), v)):.3e}" if rels else "n/a"
        status = "OK" if not bad else f"FAIL (layers {bad})"
        print(f"worst rel [{b}]: {worst}  (tol {args.tol:g})  {status}")
        failed |= bool(bad)
    print("PASS" if not failed else "FAIL")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
