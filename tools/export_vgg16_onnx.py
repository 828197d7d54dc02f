#!/usr/bin/python3
"""torchvision VGG16 -> ONNX, for models::import_vgg_onnx (or any ONNX runtime).

    /usr/bin/python3 tools/export_vgg16_onnx.py --pth vgg16-397923af.pth --out vgg16.onnx
    /usr/bin/python3 tools/export_vgg16_onnx.py --random-seed 0 --out /tmp/vgg16.onnx

Input "x" [batch, 3, SIZE, SIZE] (SIZE 64 by default, batch dynamic), output "logits"
[batch, 1000]; opset 11. The graph is features (Conv/Relu/MaxPool, unchanged), Flatten,
then the classifier.

torchvision's AdaptiveAvgPool2d((7, 7)) cannot be exported when 7 does not divide the
feature map (2x2 for 64x64 inputs). It is linear, so it is folded into the first classifier
layer: with P [7, s] the pooling matrix (row i averages input rows floor(i s/7) ..
ceil((i+1) s/7) - 1), W'[o, c, h, w] = sum_ij W[o, c, i, j] P[i, h] P[j, w]. The script
checks the exported model's function against torchvision's forward before writing.
Needs torch + torchvision (torch.onnx needs no onnx package).
"""
import argparse
import io
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_torchvision_vgg16 import load_vgg16, source_args  # noqa: E402


def pool_matrix(s, out=7):
    """P [out, s]: adaptive average pooling along one axis as a matrix."""
    p = torch.zeros(out, s, dtype=torch.float64)
    for i in range(out):
        lo, hi = (i * s) // out, -(-((i + 1) * s) // out)
        p[i, lo:hi] = 1.0 / (hi - lo)
    return p


class FoldedVgg16(nn.Module):
    """features -> flatten -> classifier with the adaptive pool folded into classifier[0]."""

    def __init__(self, vgg, size):
        super().__init__()
        self.features = vgg.features
        with torch.no_grad():
            s = self.features(torch.zeros(1, 3, size, size)).shape[-1]
            first = vgg.classifier[0]
            w = first.weight.double().reshape(first.out_features, -1, 7, 7)
            p = pool_matrix(s)
            folded = nn.Linear(w.shape[1] * s * s, first.out_features)
            folded.weight.copy_(torch.einsum("ocij,ih,jw->ochw", w, p, p).reshape(first.out_features, -1))
            folded.bias.copy_(first.bias)
        self.classifier = nn.Sequential(folded, *list(vgg.classifier)[1:])

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source_args(ap)
    ap.add_argument("--out", required=True, help="output .onnx")
    ap.add_argument("--size", type=int, default=64, help="input height and width (default 64)")
    ap.add_argument("--opset", type=int, default=11)
    args = ap.parse_args()
    try:
        vgg = load_vgg16(args.pth, args.random_seed)
    except (OSError, RuntimeError, ValueError) as e:
        sys.exit(f"{args.pth}: cannot load as a torchvision vgg16 state_dict: {str(e).splitlines()[0]}")
    model = FoldedVgg16(vgg, args.size).eval()

    x = torch.rand(2, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = vgg(x), model(x)
    rel = ((got - want).abs().max() / want.abs().max()).item()
    if rel > 1e-4:
        sys.exit(f"folded model differs from torchvision's vgg16: rel {rel:.3g}")

    buf = io.BytesIO()  # written only once the export succeeded
    torch.onnx.export(model, x[:1], buf, opset_version=args.opset, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
    with open(args.out, "wb") as f:
        f.write(buf.getvalue())
    print(f"{args.out}: {len(buf.getvalue())} bytes; logits rel error vs torchvision {rel:.2g}")


if __name__ == "__main__":
    main()
