#!/usr/bin/python3
"""The PyTorch baseline for one training epoch: student B on the MHSMA head normal cells.

Same work as the C++ trainer: 727 normal training cells (head label 0), batch 64 (last
batch 23), float32, shuffled each epoch with a fixed torch seed, no augmentation; the
frozen teacher (torchvision vgg16().features, "random:0" Xavier init, eval) is recomputed on
every batch as the MKD code does; MKD loss on pools 2..5 (lambda 0.01); Adam(lr 1e-3).
Model definitions are shared with tests/golden/make_replay_fixture.py.

Prints one JSON line {"what", "seconds_per_epoch" (median of --epochs), "epoch_seconds",
"img_per_s", "threads", "torch", "peak_rss_mb", ...}.
Run with Debian's /usr/bin/python3 (python3-torch); used only for benchmarks, never by tests.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "golden"))
import make_replay_fixture as R  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--data", default=None, help="MHSMA directory (default data/mhsma or ../shared)")
    ap.add_argument("--seed", type=int, default=0, help="torch seed of the shuffle")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    d = R.data_dir(a.data)
    x = np.load(os.path.join(d, "x_64_train.npy"))
    y = np.load(os.path.join(d, f"y_{R.PART}_train.npy"))
    data = R.to_input(x[y == 0])  # [727,3,64,64] float32
    n = data.shape[0]

    teacher, student = R.make_teacher(), R.make_student()
    opt = torch.optim.Adam(student.parameters(), lr=R.LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
    gen = torch.Generator().manual_seed(a.seed)

    times, losses = [], []
    for _ in range(a.epochs):
        student.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for b in range(0, n, a.batch):
            xb = data[perm[b:b + a.batch]]
            with torch.no_grad():
                t = teacher(xb, R.TRAIN_CRITICAL)
            loss = R.mkd_loss(student(xb, R.TRAIN_CRITICAL), t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
        times.append(time.perf_counter() - t0)
        losses.append(total / n)
        print(f"epoch {len(times)}: {times[-1]:.3f} s, mean loss {losses[-1]:.6f}", file=sys.stderr)

    med = statistics.median(times)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"what": "epoch_head_B", "seconds_per_epoch": med, "img_per_s": n / med,
                      "epoch_seconds": times, "epochs": a.epochs, "images": n, "batch": a.batch,
                      "mean_loss": losses, "threads": a.threads, "torch": torch.__version__,
                      "peak_rss_mb": peak_kb / 1024.0}))


if __name__ == "__main__":
    main()
