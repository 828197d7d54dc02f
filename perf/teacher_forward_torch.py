#!/usr/bin/python3
"""The same work in PyTorch: torchvision VGG16 features, eval, no_grad, batch of 64x64.

Prints one JSON line {"what", "img_per_s", "threads", "batch", "torch"} (median of --iters).
Run with Debian's /usr/bin/python3 (python3-torch); used only for benchmarks, never by tests.
"""
import argparse, json, statistics, time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = torchvision.models.vgg16().features.eval()
    x = torch.rand(a.batch, 3, 64, 64)
    times = []
    with torch.no_grad():
        for _ in range(2):  # warm-up
            net(x)
        for _ in range(a.iters):
            t = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t)
    print(json.dumps({"what": "teacher_fwd", "img_per_s": a.batch / statistics.median(times), "threads": a.threads,
                      "batch": a.batch, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
