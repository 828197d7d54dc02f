#!/usr/bin/python3
"""torchvision VGG16 weights (.pth) -> .safetensors for morphokd.

    /usr/bin/python3 tools/convert_torchvision_vgg16.py --pth vgg16-397923af.pth --out vgg16.safetensors
    /usr/bin/python3 tools/convert_torchvision_vgg16.py --random-seed 0 --out /tmp/vgg16.safetensors

--pth: a torchvision vgg16 state_dict (e.g. the ImageNet file vgg16-397923af.pth). It is
loaded with torch.load(weights_only=True) (no arbitrary pickles) and strictly into
torchvision.models.vgg16(), so names and shapes are checked. --random-seed S instead writes
torchvision's random init after torch.manual_seed(S), biases then drawn uniform in
[-0.1, 0.1] (no download; for testing).

Every tensor of the state_dict (features.*, classifier.*) is written as F32 under its
torchvision name; the metadata records the source. Needs torch + torchvision.
"""
import argparse
import json
import os
import struct
import sys

import torch


def load_vgg16(pth=None, seed=None):
    """torchvision's vgg16 in eval mode, from a state_dict file or a seeded random init."""
    import torchvision

    if pth is None:
        torch.manual_seed(seed)
        model = torchvision.models.vgg16(weights=None)
        # torchvision zeroes every bias: random ones make a bias mix-up visible, and keep
        # torch.onnx from merging equal zero tensors into Identity nodes OpenCV 4.6 rejects.
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                    m.bias.uniform_(-0.1, 0.1)
        return model.eval()
    state = torch.load(pth, map_location="cpu", weights_only=True)
    model = torchvision.models.vgg16(weights=None)
    model.load_state_dict(state)  # strict: exactly torchvision's names and shapes
    return model.eval()


def source_args(parser):
    """--pth / --random-seed, shared with export_vgg16_onnx.py."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--pth", help="torchvision vgg16 state_dict (.pth)")
    src.add_argument("--random-seed", type=int, help="seeded random torchvision vgg16 instead (no download)")


def source_name(args):
    return os.path.basename(args.pth) if args.pth else f"torchvision vgg16, torch.manual_seed({args.random_seed})"


def write_safetensors(path, tensors, metadata):
    """F32 tensors in dict order; the header is padded with spaces to a multiple of 8."""
    assert sys.byteorder == "little"
    header, offset = {"__metadata__": metadata}, 0
    for name, t in tensors.items():
        n = t.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * (-(8 + len(hdr)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for t in tensors.values():  # one tensor at a time: the file is ~530 MB
            f.write(t.numpy().tobytes(order="C"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source_args(ap)
    ap.add_argument("--out", required=True, help="output .safetensors")
    args = ap.parse_args()
    try:
        model = load_vgg16(args.pth, args.random_seed)
    except (OSError, RuntimeError, ValueError) as e:  # missing file, bad pickle, wrong names/shapes
        sys.exit(f"{args.pth}: cannot load as a torchvision vgg16 state_dict: {str(e).splitlines()[0]}")
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    write_safetensors(args.out, tensors, {"source": source_name(args), "model": "torchvision vgg16"})
    print(f"{args.out}: {len(tensors)} tensors, {sum(t.numel() for t in tensors.values())} values")


if __name__ == "__main__":
    main()
