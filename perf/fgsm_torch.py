#!/usr/bin/python3
"""The same work in PyTorch: one FGSM step against the MKD anomaly score, batch of 64x64 cells.

Per batch of gray cells x in [0,1] ([N,1,64,64], torch.rand with seed 0), one timed step is:
  z = per-cell standardisation (x - mean) / max(std_population, 1e-6) over the 64x64 pixels,
      replicated to 3 channels;
  teacher "random:0" (torchvision vgg16().features, eval) and student B (MKD make_layers(cfg B),
      BatchNorm in eval mode), both with parameters requires_grad False;
  score per cell = sum over pools 2,3,4,5 of (1 - cos(s, t)) + 0.01 * mean((s - t)^2) on the
      flattened maps; summed over the cells and back-propagated to x only;
  x_adv = clamp(x + eps * sign(dscore/dx), 0, 1), eps 0.01.
Model definitions are shared with tests/golden/make_replay_fixture.py.

Prints one JSON line as perf/torch_bench.py does.
Run with Debian's /usr/bin/python3 (python3-torch); used only for benchmarks, never by tests.
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "golden"))
import make_replay_fixture as R  # noqa: E402
import torch_bench  # noqa: E402

EPS, STD_FLOOR = 0.01, 1e-6


def fgsm_step(teacher, student, x_raw, eps=EPS):
    """One FGSM step: returns x_adv (detached) for the raw cells x_raw [N,1,H,W] in [0,1]."""
    x = x_raw.detach().requires_grad_(True)
    flat = x.flatten(1)
    mean = flat.mean(1).view(-1, 1, 1, 1)
    std = flat.std(1, unbiased=False).clamp_min(STD_FLOOR).view(-1, 1, 1, 1)
    z = ((x - mean) / std).expand(-1, 3, -1, -1)
    s, t = student(z, R.TRAIN_CRITICAL), teacher(z, R.TRAIN_CRITICAL)
    score = 0
    for a, b in zip(s, t):
        a, b = a.flatten(1), b.flatten(1)
        score = score + (1 - F.cosine_similarity(a, b, dim=1)) + R.LAMBDA * ((a - b) ** 2).mean(1)
    score.sum().backward()
    with torch.no_grad():
        return (x + eps * x.grad.sign()).clamp_(0, 1)


def main():
    a = torch_bench.options(__doc__.split("\n")[0])
    x = torch.rand(a.batch, 1, 64, 64)
    teacher, student = R.make_teacher(), R.make_student().eval()
    for p in student.parameters():
        p.requires_grad_(False)
    torch_bench.report("fgsm", lambda: fgsm_step(teacher, student, x), a)


if __name__ == "__main__":
    main()
