#!/usr/bin/python3
"""Writes the fuzz seed corpus (small valid and near-valid inputs) to tests/fuzz/corpus/.
Run with Debian's python3 (PIL); the files are committed, so this runs only to change them."""
import io, json, os, struct, sys
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus")


def put(kind, name, data):
    os.makedirs(os.path.join(out, kind), exist_ok=True)
    with open(os.path.join(out, kind, name), "wb") as f:
        f.write(data)


def npy(descr, shape, payload, version=1):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % d for d in shape) if len(shape) == 1 else ", ".join(map(str, shape)))
    head_len = 10 if version == 1 else 12
    pad = (-(head_len + len(header) + 1)) % 64
    header = (header + " " * pad + "\n").encode()
    size = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header + payload


cell = bytes((x * 7 + y * 3) % 256 for y in range(64) for x in range(64))
put("npy", "u8_cell.npy", npy("|u1", (1, 64, 64), cell))
put("npy", "u8_cell_nchw_v2.npy", npy("|u1", (1, 1, 64, 64), cell, version=2))
put("npy", "f32_cell.npy", npy("<f4", (1, 64, 64), struct.pack("<4096f", *[b / 255 for b in cell])))
put("npy", "f64_small.npy", npy("<f8", (2, 2), struct.pack("<4d", 0.0, 0.25, 0.5, 1.0)))
put("npy", "i64_labels.npy", npy("<i8", (3,), struct.pack("<3q", 0, 1, 0)))
put("npy", "u8_labels.npy", npy("|u1", (4,), bytes([0, 1, 1, 0])))


def safetensors(entries, metadata=None):
    header, blobs, at = {}, b"", 0
    for name, (dtype, shape, payload) in entries.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [at, at + len(payload)]}
        blobs += payload
        at += len(payload)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + blobs


put("safetensors", "f32.safetensors", safetensors({"w": ("F32", (2, 3), struct.pack("<6f", 1, -2, 3.5, 0, 1e-3, 7))}))
put("safetensors", "mixed.safetensors", safetensors({
    "a": ("F16", (2,), struct.pack("<2H", 0x3C00, 0xC000)),
    "b": ("BF16", (1, 2), struct.pack("<2H", 0x3F80, 0x4049)),
    "n": ("I64", (), struct.pack("<q", 12)),
    "z": ("F32", (0, 4), b""),
}, {"format": "pt", "content_sha256": "0" * 64}))
put("safetensors", "empty.safetensors", safetensors({}))

run = {
    "format": "morphokd-run", "format_version": 1, "status": "done",
    "config": {"part": "head", "data_dir": "data/mhsma", "teacher": "random:0", "student": "B", "epochs": 2,
               "batch": 64, "lr": 0.001, "lambda": 0.01, "train_critical": "2,3,4,5", "score_critical": "2,3,4,5",
               "seed": 0, "augment": "flip", "input_norm": "image", "score": "layer-z", "tta": "flip",
               "shuffle": True, "steps": 0, "student_init": "", "checkpoint_every": 1, "cache_limit_gb": 4.0,
               "dump_grads": False, "fgsm_eps": 0.0, "fgsm_mix": "both"},
    "input_norm": {"kind": "image", "mean": 0.0, "std": 1.0},
    "score_rule": {"combine": "layer-z", "tta": "flip", "layer_mean": [1, 2, 3, 4], "layer_std": [0.5, 0.5, 1, 2]},
    "teacher": {"spec": "random:0", "sha256": "c" * 64},
    "student": {"file": "student.safetensors", "sha256": "d" * 64},
    "thresholds": {"sum": 1.5, "youden": "-inf"},
    "data": {"x_64_train.npy": {"path": "data/mhsma/x_64_train.npy", "sha256": "e" * 64}},
}
put("run_json", "run.json", json.dumps(run, indent=2).encode())
run["config"].update(score="sum", input_norm="clahe+dataset", augment="flip,rotate", fgsm_eps=0.01, student="A",
                     train_critical="3,4", score_critical="3,4")
run["score_rule"] = {"combine": "sum", "tta": "none", "layer_mean": [], "layer_std": []}
run["input_norm"] = {"kind": "clahe+dataset", "mean": 0.4, "std": 0.2}
put("run_json", "run_sum.json", json.dumps(run).encode())


def image(fmt, mode, size, **kw):
    img = Image.new(mode, size)
    img.putdata([(x * 13 + y * 5) % (256 if mode == "L" else 65536) for y in range(size[1]) for x in range(size[0])])
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


put("image", "cell.png", image("PNG", "L", (64, 64)))
put("image", "wide16.png", image("PNG", "I;16", (24, 16)))
put("image", "small.jpg", image("JPEG", "L", (16, 16), quality=90))
put("image", "small.bmp", image("BMP", "L", (8, 8)))
put("image", "small.tif", image("TIFF", "L", (8, 8)))
print("corpus written to", out, file=sys.stderr)
