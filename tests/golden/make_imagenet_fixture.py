#!/usr/bin/python3
"""Golden VGG16 pools for ImageNet-normalised gray input (`--input-norm imagenet`), PyTorch 1.13.

    /usr/bin/python3 tests/golden/make_imagenet_fixture.py            # write the fixture
    /usr/bin/python3 tests/golden/make_imagenet_fixture.py --verify   # regenerate, compare bit-exactly

Writes tests/golden/fixtures/vgg16_imagenet_32.safetensors:
  gray   [1, 1, 32, 32] float32 uniform(8, i) (the gray cell in [0, 1])
  pool.k [1, C, H, W]   outputs of max-pools k = 1..5 of torchvision's vgg16().features with the
                        weights of vgg16_32 (make_fixtures.py), on
                        transforms.Normalize(ImageNet mean, std)(gray repeated to 3 channels),
                        computed in float64 and rounded to float32.
"""
import argparse
import os
import sys

import torch
import torchvision.transforms as T

from make_fixtures import (FIXTURE_DIR, VGG16_POOLS, f32, read_safetensors, uniform_np, vgg16_features_golden,
                           write_safetensors)

NAME = "vgg16_imagenet_32"


def generate():
    gray = torch.from_numpy(uniform_np(8, 32 * 32).astype("float32").reshape(1, 1, 32, 32))
    x = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])(gray.double().repeat(1, 3, 1, 1))
    _, outs = vgg16_features_golden(x)
    tensors = {"gray": gray}
    for k, index in enumerate(VGG16_POOLS, start=1):
        tensors[f"pool.{k}"] = outs[f"features.{index}"]
    meta = {"model": "torchvision vgg16().features, weights of vgg16_32", "input": "Normalize(ImageNet)(gray x3), f64",
            "gray": "uniform(8,i), [1,1,32,32]"}
    return tensors, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--verify", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tensors, meta = generate()
    path = os.path.join(FIXTURE_DIR, NAME + ".safetensors")
    if args.verify:
        loaded, _ = read_safetensors(path)
        same = all(torch.equal(loaded[k], v) for k, v in tensors.items()) and set(loaded) == set(tensors)
        print(("ok   " if same else "FAIL ") + path)
        sys.exit(0 if same else 1)
    write_safetensors(path, tensors, meta)
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
