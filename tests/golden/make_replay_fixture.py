#!/usr/bin/python3
"""Golden replay of the first 2 training steps of student B on MHSMA head (PyTorch 1.13).

    /usr/bin/python3 tests/golden/make_replay_fixture.py            # write the 3 fixtures + f32/f64 report
    /usr/bin/python3 tests/golden/make_replay_fixture.py --verify   # reload, compare bit-exactly
    options: --data DIR (default data/mhsma, else ../shared/data/mhsma), --no-f32 (skip the report),
             --f32-no-mkldnn (float32 replay of the report without oneDNN)

Writes (tests/golden/fixtures/):
  replay_head_B_init.safetensors    student state_dict right after init_xavier(seed=1)
  replay_head_B.safetensors         student state_dict after 2 Adam steps + loss.1, loss.2
  replay_head_B_scores.safetensors  eval-mode anomaly scores of the first 16 test cells
  replay_head_B_grad1.safetensors   d loss.1 / d parameter at the init (step-1 gradient)

Definitions (mirrored by the C++ side; see README.md "Replay fixtures"):
  * teacher "random:0": torchvision vgg16().features, init_xavier(seed=0), eval, frozen;
  * student B: MKD make_layers(cfg B, bias=False, BN on every conv not followed by 'M'),
    init_xavier(seed=1), train mode;
  * init_xavier(net, seed): conv at module index k, flat C-order element i:
    float32((2*uniform(seed*64+k, i) - 1) * sqrt(6/(9*Cin+9*Cout))) in float64; bias 0;
  * data: x_64_train.npy, head label 0 in dataset order, float32(x/255) -> 3 channels;
    step j (1-based) uses normal cells [64(j-1), 64j) — no shuffle, no augmentation;
  * loss (MKD code): sum_c mean_b(1 - cos(s_c, t_c)) + 0.01 * sum_c mse(s_c, t_c),
    c = pools 2,3,4,5; Adam(lr 1e-3, betas (0.9,0.999), eps 1e-8, wd 0);
  * score (eval mode): per image sum_{c = pools 3,4,5} (1 - cos) + 0.01 * mean((s-t)^2).
The golden values are computed in float64 (models, inputs, loss, Adam all double, from the
float32 init) and rounded to float32.  The same replay is also run in float32 and the
per-tensor divergence max|f32 - f64| / max|f64| is printed (it is NOT stored).
"""
import argparse
import hashlib
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_fixtures import FIXTURE_DIR, check_identical, uniform_np, uniform_scalar, write_safetensors  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
CFG_B = [16, 16, 'M', 16, 128, 'M', 16, 16, 256, 'M', 16, 16, 512, 'M', 16, 16, 512, 'M']
TEACHER_SEED, STUDENT_SEED = 0, 1
PART = "head"
LR, LAMBDA, BATCH, STEPS = 1e-3, 0.01, 64, 2
TRAIN_CRITICAL, TEST_CRITICAL = (2, 3, 4, 5), (3, 4, 5)
N_SCORES = 16
STEM = "replay_head_B"


# ---------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------
def init_xavier(features, seed):
    for k, m in enumerate(features):
        if isinstance(m, nn.Conv2d):
            cout, cin = m.weight.shape[0], m.weight.shape[1]
            bound = math.sqrt(6.0 / (9 * cin + 9 * cout))
            w = ((2.0 * uniform_np(seed * 64 + k, m.weight.numel()) - 1.0) * bound).astype(np.float32)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(w.reshape(m.weight.shape)))
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()  # weight 1, bias 0, running 0/1, num_batches_tracked 0
            assert m.eps == 1e-5 and m.momentum == 0.1


def make_layers(cfg, in_channels=3):
    """MKD's make_layers(cfg, use_bias=False, batch_norm=True)."""
    layers = []
    for i, v in enumerate(cfg):
        if v == 'M':
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        conv = nn.Conv2d(in_channels, v, kernel_size=3, padding=1, bias=False)
        if i + 1 < len(cfg) and cfg[i + 1] == 'M':
            layers += [conv, nn.ReLU()]
        else:
            layers += [conv, nn.BatchNorm2d(v), nn.ReLU()]
        in_channels = v
    return nn.Sequential(*layers)


class Net(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.features = features
        self.pools = [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)]

    def forward(self, x, critical):
        """Returns [output of the k-th MaxPool for k in critical]."""
        want = {self.pools[k - 1]: k for k in critical}
        out, last = {}, max(want)
        for i, m in enumerate(self.features):
            x = m(x)
            if i in want:
                out[want[i]] = x
            if i == last:
                break
        return [out[k] for k in critical]


def make_teacher():
    features = torchvision.models.vgg16(weights=None).features
    assert len(features) == 31
    init_xavier(features, TEACHER_SEED)
    t = Net(features).eval()
    assert [t.pools[k - 1] for k in TRAIN_CRITICAL] == [9, 16, 23, 30]
    for p in t.parameters():
        p.requires_grad_(False)
    return t


def make_student():
    s = Net(make_layers(CFG_B))
    init_xavier(s.features, STUDENT_SEED)
    assert sum(m.weight.numel() for m in s.features if isinstance(m, nn.Conv2d)) == 343728
    return s.train()


# ---------------------------------------------------------------------------
# data, loss, score
# ---------------------------------------------------------------------------
def data_dir(arg):
    if arg:
        return arg
    for d in (os.path.join(REPO, "data", "mhsma"), os.path.join(REPO, "..", "shared", "data", "mhsma")):
        if os.path.exists(os.path.join(d, "x_64_train.npy")):
            return d
    sys.exit("MHSMA not found: pass --data DIR")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def to_input(x_u8):
    """uint8 [N,64,64] -> float32(x/255) replicated to [N,3,64,64]."""
    x = torch.from_numpy((x_u8.astype(np.float64) / 255.0).astype(np.float32))
    assert torch.equal(x, torch.from_numpy(x_u8).float() / 255)  # same rounding either way
    return x[:, None].expand(-1, 3, -1, -1).contiguous()


def load_data(d):
    x = np.load(os.path.join(d, "x_64_train.npy"))
    y = np.load(os.path.join(d, f"y_{PART}_train.npy"))
    xt = np.load(os.path.join(d, "x_64_test.npy"))
    assert x.dtype == np.uint8 and x.shape[1:] == (64, 64) and y.shape == (x.shape[0],)
    normal = x[y == 0]
    assert normal.shape[0] >= BATCH * STEPS
    return to_input(normal[:BATCH * STEPS]), to_input(xt[:N_SCORES])


def mkd_loss(s, t):
    """MKD's MseDirectionLoss: sum of direction terms + lambda * sum of MSE terms."""
    direction = [torch.mean(1 - F.cosine_similarity(a.view(a.shape[0], -1), b.view(b.shape[0], -1)))
                 for a, b in zip(s, t)]
    value = [F.mse_loss(a, b) for a, b in zip(s, t)]
    return sum(direction) + LAMBDA * sum(value)


def scores(student, teacher, x):
    with torch.no_grad():
        s, t = student(x, TEST_CRITICAL), teacher(x, TEST_CRITICAL)
        total = 0
        for a, b in zip(s, t):
            a, b = a.flatten(1), b.flatten(1)
            total = total + (1 - F.cosine_similarity(a, b, dim=1)) + LAMBDA * ((a - b) ** 2).mean(1)
    return total


# ---------------------------------------------------------------------------
# the replay
# ---------------------------------------------------------------------------
def replay(dtype, xtrain, xtest):
    """Returns dict with init/final state_dicts, losses, step grads, params after step 1, scores."""
    teacher, student = make_teacher().to(dtype), make_student()
    init = {k: v.detach().clone() for k, v in student.state_dict().items()}
    student.to(dtype)
    opt = torch.optim.Adam(student.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
    names = [n for n, _ in student.named_parameters()]
    out = {"init": init, "loss": [], "grad": [], "state": []}
    for j in range(STEPS):
        x = xtrain[BATCH * j: BATCH * (j + 1)].to(dtype)
        with torch.no_grad():
            t = teacher(x, TRAIN_CRITICAL)
        loss = mkd_loss(student(x, TRAIN_CRITICAL), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        out["loss"].append(loss.detach().clone())
        out["grad"].append({n: p.grad.detach().clone() for n, p in zip(names, student.parameters())})
        opt.step()
        out["state"].append({k: v.detach().clone() for k, v in student.state_dict().items()})
    student.eval()
    out["scores"] = scores(student, teacher, xtest.to(dtype))
    return out


def f32(t):
    return t.detach().to(torch.float32).contiguous() if t.is_floating_point() else t.detach().clone()


def build_fixtures(d, run):
    meta = {"teacher": f"random:{TEACHER_SEED}", "student": "B", "student_init_seed": str(STUDENT_SEED),
            "part": PART, "lr": repr(LR), "lambda": repr(LAMBDA), "batch": str(BATCH), "steps": str(STEPS),
            "train_critical": ",".join(map(str, TRAIN_CRITICAL)),
            "data_sha256_x": sha256(os.path.join(d, "x_64_train.npy")),
            "adam": "betas=(0.9,0.999) eps=1e-08 weight_decay=0",
            "precision": "float64 computation from the float32 init, rounded to float32"}
    init = {k: f32(v) for k, v in run["init"].items()}
    final = {k: f32(v) for k, v in run["state"][-1].items()}
    for s in range(STEPS):
        final[f"loss.{s + 1}"] = f32(run["loss"][s].reshape(1))
    smeta = dict(meta, test_critical=",".join(map(str, TEST_CRITICAL)), n=str(N_SCORES),
                 data_sha256_x_test=sha256(os.path.join(d, "x_64_test.npy")),
                 mode="student after the 2 steps, eval mode (running stats)")
    imeta = {"student": "B", "student_init_seed": str(STUDENT_SEED),
             "init": "init_xavier: w=f32((2*uniform(seed*64+k,i)-1)*sqrt(6/(9*Cin+9*Cout))) in f64; "
                     "BN weight 1, bias 0, running_mean 0, running_var 1",
             "uniform": "(splitmix64(seed*2^32+i)>>40)/2^24"}
    grad1 = {k: f32(v) for k, v in run["grad"][0].items()}
    gmeta = dict(meta, steps="1", what="d loss.1 / d parameter at the init (before the first update)")
    return [(f"{STEM}_init", init, imeta), (STEM, final, meta),
            (f"{STEM}_scores", {"scores": f32(run["scores"])}, smeta),
            (f"{STEM}_grad1", grad1, gmeta)]


# ---------------------------------------------------------------------------
# float32 vs float64 report
# ---------------------------------------------------------------------------
def rel(a, b):
    """max|a - b| / max|b| (the measure tests/support/oracles.hpp uses)."""
    a, b = a.double(), b.double()
    scale = b.abs().max().item()
    err = (a - b).abs().max().item()
    return err / scale if scale > 0 else err


def rel_l2(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


def kink_switches(x):
    """Student at init, batch x: ReLU masks and max-pool argmaxes that differ float32 vs float64."""
    out = []
    for dtype in (torch.float32, torch.float64):
        s, h, ev = make_student().to(dtype), x.to(dtype), []
        with torch.no_grad():
            for m in s.features:
                if isinstance(m, nn.MaxPool2d):
                    h, idx = F.max_pool2d(h, 2, 2, return_indices=True)
                    ev.append(("pool", idx))
                    continue
                h = m(h)
                if isinstance(m, nn.ReLU):
                    ev.append(("relu", h > 0))
        out.append(ev)
    relu = sum(int((a != b).sum()) for (k, a), (_, b) in zip(*out) if k == "relu")
    pool = sum(int((a != b).sum()) for (k, a), (_, b) in zip(*out) if k == "pool")
    return relu, pool


def report(r32, r64, xtrain):
    """float32 replay vs the float64 golden, printed (nothing is stored)."""
    print("\n== float32 vs float64 (same float32 init, same inputs, 1 thread, mkldnn %s) =="
          % ("on" if torch.backends.mkldnn.enabled else "off"))
    for s in range(STEPS):
        a, b = r32["loss"][s].item(), r64["loss"][s].item()
        print(f"loss.{s + 1}: f64 {b:.17g}  f32 {a:.9g}  rel {abs(a - b) / abs(b):.2e}")
    d = (r32["scores"].double() - r64["scores"]).abs().max().item()
    print(f"scores: rel {rel(r32['scores'], r64['scores']):.2e} (max abs {d:.2e}; spread of the f64 scores "
          f"{(r64['scores'].max() - r64['scores'].min()).item():.2e})")
    relu, pool = kink_switches(xtrain[:BATCH])
    print(f"kinks switched at step 1 (student forward, f32 vs f64): {relu} ReLU signs, {pool} max-pool argmaxes")

    g32, g64, p0 = r32["grad"][0], r64["grad"][0], r64["init"]
    print("\nper parameter: step-1 gradient g1 and the state after step 1 / step 2")
    print(f"{'tensor':24s} {'n':>6s} {'g1 rel':>8s} {'g1 relL2':>8s} {'|g1|<1e-6':>9s} {'g1 sign':>7s} "
          f"{'p1 rel':>8s} {'p2 rel':>8s} {'max|p2|':>8s} {'upd relL2':>9s} {'>lr/2':>5s} {'max|dp2|':>8s}")
    print(f"{'':24s} {'':6s} {'':8s} {'':8s} {'*max|g1|':>9s} {'flips':>7s} "
          f"{'':8s} {'':8s} {'':8s} {'':9s} {'':5s} {'/lr':>8s}")
    rows, flip_max = [], 0.0
    for k, b in r64["state"][-1].items():
        if not b.is_floating_point():
            assert torch.equal(r32["state"][-1][k], b), k
            continue
        r1, r2 = rel(r32["state"][0][k], r64["state"][0][k]), rel(r32["state"][-1][k], b)
        dp = (r32["state"][-1][k].double() - b).abs()
        rows.append((r2, k))
        if k not in g64:  # BN running statistics
            print(f"{k:24s} {b.numel():6d} {'':8s} {'':8s} {'':9s} {'':7s} {r1:8.1e} {r2:8.1e} "
                  f"{b.abs().max().item():8.2g} {rel_l2(r32['state'][-1][k], b):9.1e}")
            continue
        ga, gb = g32[k].double(), g64[k]
        flips = torch.sign(ga) != torch.sign(gb)
        if flips.any():
            flip_max = max(flip_max, (gb.abs()[flips].max() / gb.abs().max()).item())
        upd = rel_l2(r32["state"][-1][k] - p0[k].double(), b - p0[k].double())
        print(f"{k:24s} {b.numel():6d} {rel(ga, gb):8.1e} {rel_l2(ga, gb):8.1e} "
              f"{int((gb.abs() < 1e-6 * gb.abs().max()).sum()):9d} {int(flips.sum()):7d} {r1:8.1e} {r2:8.1e} "
              f"{b.abs().max().item():8.2g} {upd:9.1e} {int((dp > LR / 2).sum()):5d} {dp.max().item() / LR:8.2f}")
    rows.sort(reverse=True)
    print("\nworst p2 rel: " + ", ".join(f"{k} {r:.2e}" for r, k in rows[:5]))
    bad = [k for r, k in rows if r > 1e-4]
    print(f"tensors above 1e-4 rel after step 2: {len(bad)} / {len(rows)}")
    print(f"largest |g1|/max|g1| among elements whose g1 sign differs f32 vs f64: {flip_max:.2e}")
    print(f"g1 relL2 worst {max(rel_l2(g32[k], g64[k]) for k in g64):.2e}, g2 relL2 worst "
          f"{max(rel_l2(r32['grad'][1][k], r64['grad'][1][k]) for k in g64):.2e}")


# ---------------------------------------------------------------------------
def verify(fixtures):
    ok = True
    for stem, tensors, meta in fixtures:
        path = os.path.join(FIXTURE_DIR, stem + ".safetensors")
        try:
            check_identical(path, tensors, meta)
            print(f"ok   {stem}.safetensors")
        except (AssertionError, OSError, KeyError, ValueError) as e:
            print(f"FAIL {stem}.safetensors: {e}")
            ok = False
    return ok


def self_checks(fixtures):
    init = fixtures[0][1]
    assert uniform_scalar(64, 0) == uniform_np(64, 1)[0]
    w0 = init["features.0.weight"].flatten()
    bound = math.sqrt(6.0 / (9 * 3 + 9 * 16))
    for i in (0, 1, 431):
        assert w0[i].item() == float(np.float32((2 * uniform_scalar(STUDENT_SEED * 64 + 0, i) - 1) * bound))
    final = fixtures[1][1]
    assert all(int(v) == STEPS for k, v in final.items() if k.endswith("num_batches_tracked"))
    assert all(int(v) == 0 for k, v in init.items() if k.endswith("num_batches_tracked"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--verify", action="store_true", help="check the files on disk")
    ap.add_argument("--data", default=None)
    ap.add_argument("--no-f32", action="store_true", help="skip the float32 divergence report")
    ap.add_argument("--f32-no-mkldnn", action="store_true",
                    help="run the float32 replay of the report with oneDNN (mkldnn) disabled")
    a = ap.parse_args()
    torch.set_num_threads(1)  # deterministic reductions
    d = data_dir(a.data)
    xtrain, xtest = load_data(d)
    r64 = replay(torch.float64, xtrain, xtest)
    fixtures = build_fixtures(d, r64)
    self_checks(fixtures)
    if a.verify:
        sys.exit(0 if verify(fixtures) else 1)
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    for stem, tensors, meta in fixtures:
        path = os.path.join(FIXTURE_DIR, stem + ".safetensors")
        write_safetensors(path, tensors, meta)
        print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")
    print("loss.1 = %.9g, loss.2 = %.9g (float64: %.17g, %.17g)" % (
        fixtures[1][1]["loss.1"].item(), fixtures[1][1]["loss.2"].item(),
        r64["loss"][0].item(), r64["loss"][1].item()))
    print("scores =", " ".join(f"{v:.6g}" for v in fixtures[2][1]["scores"].tolist()))
    if not a.no_f32:
        with torch.backends.mkldnn.flags(enabled=not a.f32_no_mkldnn):
            report(replay(torch.float32, xtrain, xtest), r64, xtrain)


if __name__ == "__main__":
    main()
