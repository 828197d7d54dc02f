#!/usr/bin/python3
"""PyTorch doing what `morphokd bench --what W` does, on the same machine, for perf/compare.sh.

Batches are torch.rand gray cells [N,1,64,64] (seed 0), standardised per cell
(x - mean) / max(std, 1e-6) and replicated to 3 channels, as the default pipeline does.
Teacher: torchvision vgg16().features, "random:0" Xavier init, eval, frozen; student B
(MKD's make_layers); critical pools 2..5, lambda 0.01 (tests/golden/make_replay_fixture.py).
  teacher_fwd  teacher forward under no_grad
  score        teacher + student (eval) forward under no_grad, per-cell score
               sum over pools of (1 - cos(s, t)) + lambda * mean((s - t)^2)
  train_step   teacher forward (no_grad) + student forward / backward of MKD's loss + Adam
  fgsm         gradient of the summed scores with respect to the cells through both networks
               (parameters frozen) + x_adv = clamp(x + 0.01 sign(g), 0, 1)
  epoch        one epoch of student B on MHSMA head normal cells, shuffled, batch 64, teacher
               recomputed every batch as MKD's code does (median over --iters epochs)
One warm-up step, then --iters timed steps; prints one JSON line {"what", "img_per_s"
(median), "threads", "batch", "torch", "peak_rss_mb", "minor_faults_per_step"} (page faults
in the timed steps per step; null for the epoch, as ours).
Run with Debian's /usr/bin/python3 (python3-torch); for benchmarks only, never by tests.
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
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "golden"))
import make_replay_fixture as R  # noqa: E402

STD_FLOOR, EPS = 1e-6, 0.01


def standardise(x):
    flat = x.flatten(1)
    mean = flat.mean(1).view(-1, 1, 1, 1)
    std = flat.std(1, unbiased=False).clamp_min(STD_FLOOR).view(-1, 1, 1, 1)
    return ((x - mean) / std).expand(-1, 3, -1, -1)


def per_cell_scores(s, t):
    total = 0
    for a, b in zip(s, t):
        a, b = a.flatten(1), b.flatten(1)
        total = total + (1 - F.cosine_similarity(a, b, dim=1)) + R.LAMBDA * ((a - b) ** 2).mean(1)
    return total


def fgsm_step(teacher, student, x_raw):
    x = x_raw.detach().requires_grad_(True)
    z = standardise(x)
    per_cell_scores(student(z, R.TRAIN_CRITICAL), teacher(z, R.TRAIN_CRITICAL)).sum().backward()
    with torch.no_grad():
        return (x + EPS * x.grad.sign()).clamp_(0, 1)


def step_function(what, a, teacher, student):
    """(step, images per step) for one workload."""
    x = torch.rand(a.batch, 1, 64, 64)
    z = standardise(x).contiguous()
    if what == "teacher_fwd":
        return (lambda: teacher(z, R.TRAIN_CRITICAL)), a.batch
    if what == "score":
        student.eval()
        return (lambda: per_cell_scores(student(z, R.TRAIN_CRITICAL), teacher(z, R.TRAIN_CRITICAL))), a.batch
    if what == "fgsm":
        student.eval()
        for p in student.parameters():
            p.requires_grad_(False)
        return (lambda: fgsm_step(teacher, student, x)), a.batch
    opt = torch.optim.Adam(student.parameters(), lr=R.LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)

    def train_on(xb):
        with torch.no_grad():
            t = teacher(xb, R.TRAIN_CRITICAL)
        loss = R.mkd_loss(student(xb, R.TRAIN_CRITICAL), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if what == "train_step":
        return (lambda: train_on(z)), a.batch
    d = R.data_dir(a.data)
    cells = np.load(os.path.join(d, "x_64_train.npy"))[np.load(os.path.join(d, f"y_{R.PART}_train.npy")) == 0]
    data = standardise(torch.from_numpy(cells).float()[:, None] / 255).contiguous()
    gen = torch.Generator().manual_seed(0)

    def epoch():
        perm = torch.randperm(data.shape[0], generator=gen)
        for b in range(0, data.shape[0], a.batch):
            train_on(data[perm[b:b + a.batch]])

    return epoch, data.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--what", required=True, choices=["teacher_fwd", "score", "train_step", "fgsm", "epoch"])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--data", default=None, help="MHSMA directory (epoch; default data/mhsma or ../shared)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    teacher, student = R.make_teacher(), R.make_student()
    step, images = step_function(a.what, a, teacher, student)
    grad = torch.enable_grad() if a.what in ("train_step", "fgsm", "epoch") else torch.no_grad()
    with grad:
        step()  # warm-up
        rates = []
        faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(a.iters):
            t = time.perf_counter()
            step()
            rates.append(images / (time.perf_counter() - t))
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before) / a.iters
    print(json.dumps({"what": a.what, "img_per_s": statistics.median(rates), "threads": a.threads, "batch": a.batch,
                      "torch": torch.__version__,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "minor_faults_per_step": None if a.what == "epoch" else faults}))


if __name__ == "__main__":
    main()
