#!/usr/bin/python3
"""The same work in PyTorch: torchvision VGG16 features, eval, no_grad, batch of 64x64.

Prints one JSON line as perf/torch_bench.py does (median of --iters).
Run with Debian's /usr/bin/python3 (python3-torch); used only for benchmarks, never by tests.
"""
import torch
import torchvision

import torch_bench


def main():
    a = torch_bench.options(__doc__.split("\n")[0])
    net = torchvision.models.vgg16().features.eval()
    x = torch.rand(a.batch, 3, 64, 64)
    with torch.no_grad():
        torch_bench.report("teacher_fwd", lambda: net(x), a)


if __name__ == "__main__":
    main()
