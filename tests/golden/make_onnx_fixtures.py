#!/usr/bin/python3
"""Deterministic generator for the ONNX-import fixtures in tests/golden/fixtures/.

    /usr/bin/python3 tests/golden/make_onnx_fixtures.py           # (re)write the four files
    /usr/bin/python3 tests/golden/make_onnx_fixtures.py --verify  # regenerate in memory, compare bytes

A tiny VGG-shaped feature stack, cfg [4, 4, 'M', 8, 'M', 8, 'M'] (3x3 conv pad 1 with bias
+ ReLU, 2x2 max-pool), built like torchvision's make_layers so its modules are named
features.{i}:

  tiny_vgg.onnx          the model exported by torch.onnx (opset 11, dynamic batch)
  tiny_vgg.safetensors   its state_dict (features.{0,2,5,8}.{weight,bias}, F32)
  tiny_vgg_io.safetensors  "x" [2,3,16,16] and "y" = features(x) [2,8,2,2], computed in
                         float64 from the float32 weights and input, rounded to float32
  tiny_vgg_leaky.onnx    negative case: conv + LeakyReLU(0.1) + max-pool (OpenCV reads the
                         LeakyRelu as a "ReLU" layer with a slope; the importer must refuse it)

Weights: torch.manual_seed(20240607) then PyTorch's default init, biases redrawn uniform
in [-0.5, 0.5] so that they matter; x uniform in [-1, 1).
"""
import argparse
import io
import json
import os
import struct
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE_DIR = os.path.join(HERE, "fixtures")
CFG = [4, 4, "M", 8, "M", 8, "M"]
SEED = 20240607


def safetensors_bytes(tensors):
    """F32 tensors, in dict order: 8-byte LE header length, JSON header padded with spaces
    so that 8 + length is a multiple of 8, then the raw little-endian data."""
    assert sys.byteorder == "little"
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().to(torch.float32).contiguous()
        raw = t.numpy().tobytes(order="C")
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * (-(8 + len(hdr)) % 8)
    return struct.pack("<Q", len(hdr)) + hdr + b"".join(blobs)


class TinyVgg(nn.Module):
    """Only `features`, so state_dict and ONNX initializer names are features.{i}.*"""

    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for v in CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return torch.flatten(self.features(x), 1)  # a Flatten after the features, as in VGG


def build():
    """Returns {file name: bytes}."""
    torch.manual_seed(SEED)
    model = TinyVgg().eval()
    with torch.no_grad():
        for m in model.features:
            if isinstance(m, nn.Conv2d):
                m.bias.uniform_(-0.5, 0.5)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        y = model.double().features(x.double()).float()
        model.float()

    onnx, leaky = io.BytesIO(), io.BytesIO()
    torch.onnx.export(model, x, onnx, opset_version=11, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, do_constant_folding=True)
    bad = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.1), nn.MaxPool2d(2)).eval()
    torch.onnx.export(bad, x, leaky, opset_version=11, input_names=["x"], output_names=["y"])
    state = {k: v for k, v in model.state_dict().items()}
    return {
        "tiny_vgg.onnx": onnx.getvalue(),
        "tiny_vgg.safetensors": safetensors_bytes(state),
        "tiny_vgg_io.safetensors": safetensors_bytes({"x": x, "y": y}),
        "tiny_vgg_leaky.onnx": leaky.getvalue(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--verify", action="store_true", help="compare files on disk with a fresh generation")
    args = ap.parse_args()
    files = build()
    bad = 0
    for name, data in files.items():
        path = os.path.join(FIXTURE_DIR, name)
        if args.verify:
            with open(path, "rb") as f:
                same = f.read() == data
            print(f"{name}: {'ok' if same else 'DIFFERS'}")
            bad += not same
        else:
            with open(path, "wb") as f:
                f.write(data)
            print(f"{name}: {len(data)} bytes")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
