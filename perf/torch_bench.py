"""Shared by the PyTorch sides of the perf comparisons: the common options and the timing.

Each script times one step function: 2 warm-up calls, then --iters timed calls; it prints one
JSON line {"what", "img_per_s", "threads", "batch", "torch"} with the median.
"""
import argparse
import json
import statistics
import time

import torch


def options(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    return a


def report(what, step, a):
    for _ in range(2):  # warm-up
        step()
    times = []
    for _ in range(a.iters):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print(json.dumps({"what": what, "img_per_s": a.batch / statistics.median(times), "threads": a.threads,
                      "batch": a.batch, "torch": torch.__version__}))
