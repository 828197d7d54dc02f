#!/usr/bin/python3
"""Deterministic generator for the golden fixtures in tests/golden/fixtures/.

    /usr/bin/python3 tests/golden/make_fixtures.py           # (re)write every fixture
    /usr/bin/python3 tests/golden/make_fixtures.py --verify  # check files on disk

Conventions (see README.md for the tensor names of each file):
  * inputs are float32 (I64 for labels / num_batches_tracked), drawn from a
    torch.Generator seeded with crc32(<fixture file stem>);
  * goldens (outputs, gradients) are computed in float64 from the float32
    inputs and then rounded to float32;
  * optimizer fixtures are computed in float32 with torch.optim itself;
  * "dy" is a random upstream gradient with the op output's shape, and every
    gradient is d(sum(y * dy)) / d(input).

--verify reloads every file with the reader below and checks that
  (1) it is byte-for-byte what the generator produces now, and
  (2) the stored outputs agree with an independent float64 numpy
      recomputation from the stored inputs (guards writer/semantics bugs).
"""
import argparse
import json
import math
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE_DIR = os.path.join(HERE, "fixtures")

# ---------------------------------------------------------------------------
# safetensors I/O (hand written; no dependency on the safetensors package)
# ---------------------------------------------------------------------------
_DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}
_NP_DTYPES = {code: np.dtype(npdt) for code, npdt in _DTYPES.values()}


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> torch.Tensor (F32 or I64), written in dict order."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    arrays, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        code, npdt = _DTYPES[t.dtype]
        a = np.ascontiguousarray(t.numpy().astype(npdt, copy=False))
        header[name] = {"dtype": code, "shape": list(t.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        arrays.append(a)
        offset += a.nbytes
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * (-(8 + len(hdr)) % 8)  # 8 + N is a multiple of 8
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for a in arrays:
            f.write(a.tobytes(order="C"))


def read_safetensors(path):
    """Returns (dict name -> torch.Tensor in header order, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    assert (8 + n) % 8 == 0, f"{path}: header not padded to 8 bytes"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors, expect = {}, 0
    for name, info in header.items():
        begin, end = info["data_offsets"]
        assert begin == expect, f"{path}:{name}: tensors not contiguous"
        dt = _NP_DTYPES[info["dtype"]]
        count = int(np.prod(info["shape"], dtype=np.int64))
        assert end - begin == count * dt.itemsize, f"{path}:{name}: bad size"
        a = np.frombuffer(data, dtype=dt, count=count, offset=begin)
        tensors[name] = torch.from_numpy(a.reshape(info["shape"]).copy())
        expect = end
    assert expect == len(data), f"{path}: trailing bytes in data buffer"
    return tensors, metadata


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def rng(stem):
    """Per-fixture generator, seeded from the fixture's name."""
    return torch.Generator().manual_seed(zlib.crc32(stem.encode()))


def U(g, shape, lo=-1.0, hi=1.0):
    return torch.rand(shape, generator=g, dtype=torch.float32) * (hi - lo) + lo


def f32(t):
    return t.detach().to(torch.float32, copy=True).contiguous()


def golden(fn, inputs, dy, wrt):
    """Runs fn(**inputs) in float64, backprops sum(y*dy), returns float32
    (y, {name: grad}) for the input names listed in wrt."""
    xs = {k: (v.double().requires_grad_(k in wrt) if v.is_floating_point() else v)
          for k, v in inputs.items()}
    y = fn(**xs)
    (y * dy.double()).sum().backward()
    return f32(y), {k: f32(xs[k].grad) for k in wrt}


# ---------------------------------------------------------------------------
# fixture families: each returns a list of (file stem, tensors, metadata)
# ---------------------------------------------------------------------------
def fam_conv2d():
    configs = [(2, 3, 4, 5, 7, True), (1, 2, 3, 4, 4, False),
               (3, 5, 2, 6, 3, True), (1, 8, 16, 9, 9, False)]
    out = []
    for k, (N, Cin, Cout, H, W, bias) in enumerate(configs):
        stem = f"conv2d_{k}"
        g = rng(stem)
        inp = {"x": U(g, (N, Cin, H, W)), "w": U(g, (Cout, Cin, 3, 3))}
        if bias:
            inp["b"] = U(g, (Cout,))
        dy = U(g, (N, Cout, H, W))
        y, gr = golden(lambda x, w, b=None: F.conv2d(x, w, b, stride=1, padding=1),
                       inp, dy, list(inp))
        t = dict(inp, y=y, dy=dy, dx=gr["x"], dw=gr["w"])
        if bias:
            t["db"] = gr["b"]
        out.append((stem, t, {"op": "conv2d", "kernel": "3", "stride": "1",
                              "padding": "1", "bias": str(bias).lower()}))
    return out


def fam_relu():
    out = []
    for k, shape in enumerate([(2, 3, 5, 7), (1, 4, 3, 3)]):
        stem = f"relu_{k}"
        g = rng(stem)
        x = U(g, shape)
        # keep away from the kink: |x| >= 1e-3
        x = torch.where(x.abs() < 1e-3, x + torch.where(x >= 0, 2e-3, -2e-3), x)
        assert x.abs().min() >= 1e-3
        dy = U(g, shape)
        y, gr = golden(lambda x: F.relu(x), {"x": x}, dy, ["x"])
        out.append((stem, {"x": x, "y": y, "dy": dy, "dx": gr["x"]}, {"op": "relu"}))
    return out


def fam_maxpool():
    out = []
    for k, shape in enumerate([(2, 3, 6, 8), (1, 2, 5, 7), (3, 1, 2, 2)]):
        stem = f"maxpool_{k}"
        g = rng(stem)
        x = U(g, shape)
        N, C, H, W = shape
        win = x[:, :, :H // 2 * 2, :W // 2 * 2].reshape(N, C, H // 2, 2, W // 2, 2)
        win = win.permute(0, 1, 2, 4, 3, 5).reshape(-1, 4)
        assert all(len(set(r.tolist())) == 4 for r in win), "tie inside a window"
        dy = U(g, (N, C, H // 2, W // 2))
        y, gr = golden(lambda x: F.max_pool2d(x, 2, 2, padding=0, ceil_mode=False),
                       {"x": x}, dy, ["x"])
        out.append((stem, {"x": x, "y": y, "dy": dy, "dx": gr["x"]},
                    {"op": "maxpool2d", "kernel": "2", "stride": "2", "padding": "0",
                     "ceil_mode": "false"}))
    return out


def _bn_params(g, C):
    return {"gamma": U(g, (C,), 0.5, 1.5), "beta": U(g, (C,), -0.5, 0.5),
            "rm": U(g, (C,), -0.2, 0.2), "rv": U(g, (C,), 0.5, 1.5)}


def _bn_module(p, train):
    C = p["gamma"].numel()
    bn = nn.BatchNorm2d(C, eps=1e-5, momentum=0.1).double()
    with torch.no_grad():
        bn.weight.copy_(p["gamma"])
        bn.bias.copy_(p["beta"])
        bn.running_mean.copy_(p["rm"])
        bn.running_var.copy_(p["rv"])
    return bn.train(train)


def fam_batchnorm_train():
    out = []
    for k, shape in enumerate([(4, 3, 5, 5), (2, 5, 3, 7), (1, 2, 4, 4)]):
        stem = f"batchnorm_train_{k}"
        g = rng(stem)
        x = U(g, shape)
        p = _bn_params(g, shape[1])
        dy = U(g, shape)
        bn = _bn_module(p, train=True)
        xd = x.double().requires_grad_(True)
        y = bn(xd)
        (y * dy.double()).sum().backward()
        t = {"x": x, "gamma": p["gamma"], "beta": p["beta"],
             "running_mean_in": p["rm"], "running_var_in": p["rv"],
             "y": f32(y), "running_mean_out": f32(bn.running_mean),
             "running_var_out": f32(bn.running_var),
             "dy": dy, "dx": f32(xd.grad), "dgamma": f32(bn.weight.grad),
             "dbeta": f32(bn.bias.grad)}
        out.append((stem, t, {"op": "batchnorm2d", "mode": "train", "eps": "1e-05",
                              "momentum": "0.1"}))
    return out


def fam_batchnorm_eval():
    out = []
    for k, shape in enumerate([(4, 3, 5, 5), (1, 2, 4, 4)]):
        stem = f"batchnorm_eval_{k}"
        g = rng(stem)
        x = U(g, shape)
        p = _bn_params(g, shape[1])
        dy = U(g, shape)
        bn = _bn_module(p, train=False)
        xd = x.double().requires_grad_(True)
        y = bn(xd)
        (y * dy.double()).sum().backward()
        t = {"x": x, "gamma": p["gamma"], "beta": p["beta"],
             "running_mean": p["rm"], "running_var": p["rv"], "y": f32(y),
             "dy": dy, "dx": f32(xd.grad), "dgamma": f32(bn.weight.grad),
             "dbeta": f32(bn.bias.grad)}
        out.append((stem, t, {"op": "batchnorm2d", "mode": "eval", "eps": "1e-05"}))
    return out


def fam_linear():
    out = []
    for k, (N, fin, fout) in enumerate([(3, 7, 5), (1, 16, 10), (5, 1, 3)]):
        stem = f"linear_{k}"
        g = rng(stem)
        inp = {"x": U(g, (N, fin)), "w": U(g, (fout, fin)), "b": U(g, (fout,))}
        dy = U(g, (N, fout))
        y, gr = golden(F.linear, {"input": inp["x"], "weight": inp["w"], "bias": inp["b"]},
                       dy, ["input", "weight", "bias"])
        t = dict(inp, y=y, dy=dy, dx=gr["input"], dw=gr["weight"], db=gr["bias"])
        out.append((stem, t, {"op": "linear"}))
    return out


def fam_gap():
    out = []
    for k, shape in enumerate([(2, 3, 4, 5), (1, 8, 1, 1), (3, 2, 7, 7)]):
        stem = f"gap_{k}"
        g = rng(stem)
        x = U(g, shape)
        dy = U(g, shape[:2])
        y, gr = golden(lambda x: x.mean(dim=(2, 3)), {"x": x}, dy, ["x"])
        out.append((stem, {"x": x, "y": y, "dy": dy, "dx": gr["x"]},
                    {"op": "global_avg_pool"}))
    return out


def fam_softmax_ce():
    out = []
    for k, (N, K) in enumerate([(4, 10), (1, 3), (7, 2)]):
        stem = f"softmax_ce_{k}"
        g = rng(stem)
        logits = U(g, (N, K))
        labels = torch.randint(0, K, (N,), generator=g, dtype=torch.int64)
        ld = logits.double().requires_grad_(True)
        loss = F.cross_entropy(ld, labels, reduction="mean")
        loss.backward()
        t = {"logits": logits, "labels": labels, "loss": f32(loss.reshape(1)),
             "dlogits": f32(ld.grad)}
        out.append((stem, t, {"op": "softmax_cross_entropy", "reduction": "mean"}))
    return out


def fam_cosine():
    out = []
    for k, (N, D) in enumerate([(3, 20), (1, 5), (4, 257)]):
        stem = f"cosine_{k}"
        g = rng(stem)
        inp = {"a": U(g, (N, D)), "b": U(g, (N, D))}
        dy = U(g, (N,))
        y, gr = golden(lambda a, b: F.cosine_similarity(a, b, dim=1, eps=1e-8),
                       inp, dy, ["a", "b"])
        out.append((stem, dict(inp, y=y, dy=dy, da=gr["a"], db=gr["b"]),
                    {"op": "cosine_similarity", "dim": "1", "eps": "1e-08"}))
    return out


def fam_mse():
    out = []
    for k, (N, D) in enumerate([(3, 20), (1, 5), (4, 257)]):
        stem = f"mse_{k}"
        g = rng(stem)
        inp = {"a": U(g, (N, D)), "b": U(g, (N, D))}
        dy = U(g, (N,))
        y, gr = golden(lambda a, b: ((a - b) ** 2).mean(dim=1), inp, dy, ["a", "b"])
        out.append((stem, dict(inp, y=y, dy=dy, da=gr["a"], db=gr["b"]),
                    {"op": "mse_per_sample", "dim": "1"}))
    return out


def _stack_module():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                         nn.ReLU(), nn.MaxPool2d(2, 2))


def _state(m, prefix):
    return {prefix + k: (v.detach().clone() if v.dtype == torch.int64 else f32(v))
            for k, v in m.state_dict().items()}


def fam_stack():
    stem = "stack"
    g = rng(stem)
    m = _stack_module()
    torch.manual_seed(zlib.crc32(stem.encode()))
    nn.init.xavier_uniform_(m[0].weight)
    with torch.no_grad():
        m[1].weight.copy_(U(g, (8,), 0.5, 1.5))
        m[1].bias.copy_(U(g, (8,), -0.5, 0.5))
    x = U(g, (2, 3, 6, 6))
    dy = U(g, (2, 8, 3, 3))
    t = _state(m, "in.")
    m.double().train()
    xd = x.double().requires_grad_(True)
    y = m(xd)
    (y * dy.double()).sum().backward()
    t.update(_state(m, "out."))
    t.update({"x": x, "y": f32(y), "dy": dy, "dx": f32(xd.grad),
              "grad.0.weight": f32(m[0].weight.grad), "grad.1.weight": f32(m[1].weight.grad),
              "grad.1.bias": f32(m[1].bias.grad)})
    return [(stem, t, {"model": "Conv2d(3,8,3,padding=1,bias=False),BatchNorm2d(8),ReLU,"
                                "MaxPool2d(2,2)", "mode": "train", "bn_eps": "1e-05",
                       "bn_momentum": "0.1"})]


def _optimizer_fixture(stem, make_opt, steps, meta):
    """Float32, torch.optim itself: p0 -> step(g1) -> p1 -> step(g2) -> p2 ..."""
    g = rng(stem)
    p0 = {"a": U(g, (3, 4)), "b": U(g, (5,))}
    grads = [{"a": U(g, (3, 4)), "b": U(g, (5,))} for _ in range(steps)]
    params = [p0["a"].clone().requires_grad_(True), p0["b"].clone().requires_grad_(True)]
    opt = make_opt(params)
    t = {"p0.a": p0["a"], "p0.b": p0["b"]}
    for s, gs in enumerate(grads, start=1):
        t[f"g{s}.a"], t[f"g{s}.b"] = gs["a"], gs["b"]
    for s, gs in enumerate(grads, start=1):
        params[0].grad, params[1].grad = gs["a"].clone(), gs["b"].clone()
        opt.step()
        t[f"p{s}.a"], t[f"p{s}.b"] = params[0].detach().clone(), params[1].detach().clone()
    return (stem, t, dict(meta, steps=str(steps)))


def fam_sgd():
    cfgs = [("sgd", dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=1e-2)),
            ("sgd_plain", dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=False,
                               weight_decay=0.0)),
            ("sgd_nomomentum", dict(lr=0.1, momentum=0.0, dampening=0.0, nesterov=False,
                                    weight_decay=0.0))]
    out = []
    for stem, hp in cfgs:
        meta = {"optimizer": "SGD", "lr": repr(hp["lr"]), "momentum": repr(hp["momentum"]),
                "dampening": repr(hp["dampening"]), "nesterov": str(hp["nesterov"]).lower(),
                "weight_decay": repr(hp["weight_decay"])}
        out.append(_optimizer_fixture(stem, lambda ps, hp=hp: torch.optim.SGD(ps, **hp), 2, meta))
    return out


def fam_adam():
    out = []
    for stem, wd in [("adam", 0.0), ("adam_wd", 1e-2)]:
        hp = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd, amsgrad=False)
        meta = {"optimizer": "Adam", "lr": repr(hp["lr"]), "beta1": "0.9", "beta2": "0.999",
                "eps": repr(hp["eps"]), "weight_decay": repr(wd), "amsgrad": "false"}
        out.append(_optimizer_fixture(stem, lambda ps, hp=hp: torch.optim.Adam(ps, **hp), 3, meta))
    return out


# --- VGG16 features with weights from a counter-based generator ------------
VGG16_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
VGG16_POOLS = [4, 9, 16, 23, 30]
_M64 = 2 ** 64


def splitmix64(z):
    """Scalar reference (python ints)."""
    z = (z + 0x9E3779B97F4A7C15) % _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % _M64
    return z ^ (z >> 31)


def uniform_scalar(seed, i):
    return (splitmix64(seed * 2 ** 32 + i) >> 40) / 2 ** 24


def uniform_np(seed, n):
    """uniform(seed, i) for i = 0..n-1 as float64 (exact, in [0,1))."""
    u64 = np.uint64
    with np.errstate(over="ignore"):
        z = (u64(seed) << u64(32)) + np.arange(n, dtype=np.uint64)
        z = z + u64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> u64(30))) * u64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> u64(27))) * u64(0x94D049BB133111EB)
        z = z ^ (z >> u64(31))
    return (z >> u64(40)).astype(np.float64) / 2.0 ** 24


def vgg16_conv_params(k, cout, cin):
    a = math.sqrt(6.0 / (cin * 9 + cout * 9))
    w = ((2.0 * uniform_np(1000 + k, cout * cin * 9) - 1.0) * a).astype(np.float32)
    b = ((2.0 * uniform_np(2000 + k, cout) - 1.0) * 0.1).astype(np.float32)
    return torch.from_numpy(w.reshape(cout, cin, 3, 3)), torch.from_numpy(b)


def vgg16_input():
    return torch.from_numpy(uniform_np(7, 3 * 32 * 32).astype(np.float32).reshape(1, 3, 32, 32))


def vgg16_features_golden(x):
    import torchvision
    features = torchvision.models.vgg16(weights=None).features
    assert len(features) == 31
    for k in VGG16_CONVS:
        conv = features[k]
        w, b = vgg16_conv_params(k, conv.out_channels, conv.in_channels)
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(b)
    features.double().eval()
    outs = {}
    h = x.double()
    with torch.no_grad():
        for i, mod in enumerate(features):
            h = mod(h)
            if i in VGG16_CONVS or i in VGG16_POOLS:
                outs[f"features.{i}"] = f32(h)
    return features, outs


def fam_vgg16():
    x = vgg16_input()
    features, outs = vgg16_features_golden(x)
    t = {"x": x, "w.0": f32(features[0].weight), "b.0": f32(features[0].bias)}
    t.update(outs)
    meta = {"model": "torchvision vgg16().features", "input": "uniform(7,i), [1,3,32,32]",
            "weights": "w=f32((2*uniform(1000+k,i)-1)*sqrt(6/(9*Cin+9*Cout))) in f64",
            "bias": "b=f32((2*uniform(2000+k,i)-1)*0.1) in f64",
            "uniform": "(splitmix64(seed*2^32+i)>>40)/2^24",
            "stored": "conv outputs (pre-ReLU) and max-pool outputs"}
    return [("vgg16_32", t, meta)]


FAMILIES = [fam_conv2d, fam_relu, fam_maxpool, fam_batchnorm_train, fam_batchnorm_eval,
            fam_linear, fam_gap, fam_softmax_ce, fam_cosine, fam_mse, fam_stack, fam_sgd,
            fam_adam, fam_vgg16]


def generate_all():
    out = []
    for fam in FAMILIES:
        out.extend(fam())
    return out


# ---------------------------------------------------------------------------
# --verify: independent float64 numpy recomputation from the stored inputs
# ---------------------------------------------------------------------------
def _np(t):
    return t.numpy().astype(np.float64)


def _close(name, got, want, tol=5e-7):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    err = np.max(np.abs(got - want)) if got.size else 0.0
    scale = max(1.0, np.max(np.abs(want)) if want.size else 0.0)
    assert err <= tol * scale, f"{name}: max err {err:.3g} > {tol * scale:.3g}"


def _conv3x3(x, w):  # x [N,C,H,W], w [O,C,3,3], stride 1, pad 1
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((N, w.shape[0], H, W))
    for i in range(3):
        for j in range(3):
            y += np.einsum("nchw,oc->nohw", xp[:, :, i:i + H, j:j + W], w[:, :, i, j])
    return y


def _conv3x3_grads(x, w, dy):
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(3):
        for j in range(3):
            dw[:, :, i, j] = np.einsum("nchw,nohw->oc", xp[:, :, i:i + H, j:j + W], dy)
            dxp[:, :, i:i + H, j:j + W] += np.einsum("nohw,oc->nchw", dy, w[:, :, i, j])
    return dxp[:, :, 1:-1, 1:-1], dw


def _maxpool2(x, dy=None):
    N, C, H, W = x.shape
    Ho, Wo = H // 2, W // 2
    win = x[:, :, :2 * Ho, :2 * Wo].reshape(N, C, Ho, 2, Wo, 2).transpose(0, 1, 2, 4, 3, 5)
    win = win.reshape(N, C, Ho, Wo, 4)
    y = win.max(-1)
    if dy is None:
        return y
    arg = win.argmax(-1)
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(N, C, Ho, Wo):
        a = arg[n, c, i, j]
        dx[n, c, 2 * i + a // 2, 2 * j + a % 2] += dy[n, c, i, j]
    return y, dx


def _bn_train(x, gamma, beta, rm, rv, dy, eps=1e-5, mom=0.1):
    ax = (0, 2, 3)
    m = x.shape[0] * x.shape[2] * x.shape[3]
    mu = x.mean(ax)
    var = x.var(ax)  # biased
    inv = 1.0 / np.sqrt(var + eps)
    c = (slice(None), None, None)
    xhat = (x - mu[c]) * inv[c]
    y = gamma[c] * xhat + beta[c]
    dbeta = dy.sum(ax)
    dgamma = (dy * xhat).sum(ax)
    dx = gamma[c] * inv[c] / m * (m * dy - dbeta[c] - xhat * dgamma[c])
    rm_out = (1 - mom) * rm + mom * mu
    rv_out = (1 - mom) * rv + mom * var * m / (m - 1)  # unbiased
    return y, rm_out, rv_out, dx, dgamma, dbeta


def check_conv2d(t, meta):
    x, w, dy = _np(t["x"]), _np(t["w"]), _np(t["dy"])
    y = _conv3x3(x, w)
    if "b" in t:
        y += _np(t["b"])[None, :, None, None]
        _close("db", t["db"], dy.sum((0, 2, 3)))
    _close("y", t["y"], y)
    dx, dw = _conv3x3_grads(x, w, dy)
    _close("dx", t["dx"], dx)
    _close("dw", t["dw"], dw)


def check_relu(t, meta):
    x, dy = _np(t["x"]), _np(t["dy"])
    assert np.abs(x).min() >= 1e-3
    _close("y", t["y"], np.maximum(x, 0))
    _close("dx", t["dx"], dy * (x > 0))


def check_maxpool(t, meta):
    y, dx = _maxpool2(_np(t["x"]), _np(t["dy"]))
    _close("y", t["y"], y)
    _close("dx", t["dx"], dx)


def check_batchnorm_train(t, meta):
    y, rm, rv, dx, dg, db = _bn_train(*(_np(t[k]) for k in (
        "x", "gamma", "beta", "running_mean_in", "running_var_in", "dy")))
    for k, v in [("y", y), ("running_mean_out", rm), ("running_var_out", rv), ("dx", dx),
                 ("dgamma", dg), ("dbeta", db)]:
        _close(k, t[k], v)


def check_batchnorm_eval(t, meta):
    x, gamma, beta, rm, rv, dy = (_np(t[k]) for k in (
        "x", "gamma", "beta", "running_mean", "running_var", "dy"))
    c = (slice(None), None, None)
    inv = 1.0 / np.sqrt(rv + 1e-5)
    xhat = (x - rm[c]) * inv[c]
    _close("y", t["y"], gamma[c] * xhat + beta[c])
    _close("dx", t["dx"], dy * (gamma * inv)[c])
    _close("dgamma", t["dgamma"], (dy * xhat).sum((0, 2, 3)))
    _close("dbeta", t["dbeta"], dy.sum((0, 2, 3)))


def check_linear(t, meta):
    x, w, b, dy = (_np(t[k]) for k in ("x", "w", "b", "dy"))
    _close("y", t["y"], x @ w.T + b)
    _close("dx", t["dx"], dy @ w)
    _close("dw", t["dw"], dy.T @ x)
    _close("db", t["db"], dy.sum(0))


def check_gap(t, meta):
    x, dy = _np(t["x"]), _np(t["dy"])
    _close("y", t["y"], x.mean((2, 3)))
    _close("dx", t["dx"], np.broadcast_to(dy[:, :, None, None] / (x.shape[2] * x.shape[3]),
                                          x.shape))


def check_softmax_ce(t, meta):
    z, lab = _np(t["logits"]), t["labels"].numpy()
    assert t["labels"].dtype == torch.int64 and lab.min() >= 0 and lab.max() < z.shape[1]
    N = z.shape[0]
    zs = z - z.max(1, keepdims=True)
    lse = np.log(np.exp(zs).sum(1))
    _close("loss", t["loss"], [np.mean(lse - zs[np.arange(N), lab])])
    p = np.exp(zs - lse[:, None])
    p[np.arange(N), lab] -= 1.0
    _close("dlogits", t["dlogits"], p / N)


def check_cosine(t, meta):
    a, b, dy = _np(t["a"]), _np(t["b"]), _np(t["dy"])
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    assert na.min() > 1e-3 and nb.min() > 1e-3  # eps clamp not active
    y = (a * b).sum(1) / (na * nb)
    _close("y", t["y"], y)
    c = (slice(None), None)
    _close("da", t["da"], dy[c] * (b / (na * nb)[c] - y[c] * a / (na ** 2)[c]))
    _close("db", t["db"], dy[c] * (a / (na * nb)[c] - y[c] * b / (nb ** 2)[c]))


def check_mse(t, meta):
    a, b, dy = _np(t["a"]), _np(t["b"]), _np(t["dy"])
    D = a.shape[1]
    _close("y", t["y"], ((a - b) ** 2).mean(1))
    _close("da", t["da"], dy[:, None] * 2 * (a - b) / D)
    _close("db", t["db"], -dy[:, None] * 2 * (a - b) / D)


def check_stack(t, meta):
    x, w, dy = _np(t["x"]), _np(t["in.0.weight"]), _np(t["dy"])
    assert int(t["in.1.num_batches_tracked"]) == 0 and int(t["out.1.num_batches_tracked"]) == 1
    assert t["in.1.num_batches_tracked"].shape == () and t["in.1.num_batches_tracked"].dtype == torch.int64
    _close("out.0.weight", t["out.0.weight"], t["in.0.weight"], 0)
    _close("out.1.weight", t["out.1.weight"], t["in.1.weight"], 0)
    _close("out.1.bias", t["out.1.bias"], t["in.1.bias"], 0)
    conv = _conv3x3(x, w)
    bn, rm, rv, _, _, _ = _bn_train(conv, *(_np(t[k]) for k in (
        "in.1.weight", "in.1.bias", "in.1.running_mean", "in.1.running_var")), np.zeros_like(conv))
    r = np.maximum(bn, 0)
    y, dr = _maxpool2(r, dy)
    _close("y", t["y"], y)
    _close("out.1.running_mean", t["out.1.running_mean"], rm)
    _close("out.1.running_var", t["out.1.running_var"], rv)
    dbn = dr * (bn > 0)
    _, _, _, dconv, dg, db = _bn_train(conv, *(_np(t[k]) for k in (
        "in.1.weight", "in.1.bias", "in.1.running_mean", "in.1.running_var")), dbn)
    _close("grad.1.weight", t["grad.1.weight"], dg)
    _close("grad.1.bias", t["grad.1.bias"], db)
    dx, dw = _conv3x3_grads(x, w, dconv)
    _close("dx", t["dx"], dx)
    _close("grad.0.weight", t["grad.0.weight"], dw)


def _check_optimizer(t, meta, update):
    steps = int(meta["steps"])
    for leaf in ("a", "b"):
        p, state = _np(t[f"p0.{leaf}"]), {}
        for s in range(1, steps + 1):
            p = update(p, _np(t[f"g{s}.{leaf}"]), state, s)
            _close(f"p{s}.{leaf}", t[f"p{s}.{leaf}"], p, 2e-6)


def check_sgd(t, meta):
    lr, mom, damp, wd = (float(meta[k]) for k in ("lr", "momentum", "dampening", "weight_decay"))
    nesterov = meta["nesterov"] == "true"

    def update(p, g, st, s):
        d = g + wd * p
        if mom != 0:
            st["buf"] = d.copy() if s == 1 else mom * st["buf"] + (1 - damp) * d
            d = d + mom * st["buf"] if nesterov else st["buf"]
        return p - lr * d
    _check_optimizer(t, meta, update)


def check_adam(t, meta):
    lr, b1, b2, eps, wd = (float(meta[k]) for k in ("lr", "beta1", "beta2", "eps", "weight_decay"))

    def update(p, g, st, s):
        g = g + wd * p
        st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
        st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
        denom = np.sqrt(st["v"]) / math.sqrt(1 - b2 ** s) + eps
        return p - lr / (1 - b1 ** s) * st["m"] / denom
    _check_optimizer(t, meta, update)


def check_vgg16(t, meta):
    # counter-based generator: numpy vectorisation == python-int reference
    for seed in (7, 1000, 2000, 1028):
        u = uniform_np(seed, 4096)
        for i in list(range(16)) + [4095]:
            assert u[i] == uniform_scalar(seed, i), (seed, i)
    w0, b0 = vgg16_conv_params(0, 64, 3)
    assert torch.equal(t["w.0"], w0) and torch.equal(t["b.0"], b0)
    assert torch.equal(t["x"], vgg16_input())
    # first block recomputed independently in numpy; the rest via the torch
    # model built from the regenerated weights, fed with the stored activations
    h = _np(t["x"])
    c0 = _conv3x3(h, _np(w0)) + _np(b0)[None, :, None, None]
    _close("features.0", t["features.0"], c0)
    features, _ = vgg16_features_golden(t["x"])
    names = sorted((int(k.split(".")[1]) for k in t if k.startswith("features.")))
    assert names == sorted(VGG16_CONVS + VGG16_POOLS), names
    prev_i, prev = -1, t["x"].double()
    with torch.no_grad():
        for i in names:
            h = prev
            for j in range(prev_i + 1, i + 1):
                h = features[j](h)
            _close(f"features.{i}", t[f"features.{i}"], h.numpy())
            # continue from the stored (float32) activation, through the ReLU
            prev_i, prev = i, t[f"features.{i}"].double()


CHECKS = {"conv2d": check_conv2d, "relu": check_relu, "maxpool": check_maxpool,
          "batchnorm_train": check_batchnorm_train, "batchnorm_eval": check_batchnorm_eval,
          "linear": check_linear, "gap": check_gap, "softmax_ce": check_softmax_ce,
          "cosine": check_cosine, "mse": check_mse, "stack": check_stack, "sgd": check_sgd,
          "sgd_plain": check_sgd, "sgd_nomomentum": check_sgd, "adam": check_adam,
          "adam_wd": check_adam, "vgg16_32": check_vgg16}


def family_of(stem):
    if stem in CHECKS:
        return stem
    return stem.rsplit("_", 1)[0]


def check_identical(path, tensors, meta):
    """The file on disk holds exactly these tensors (names, order, dtypes, bits) and metadata."""
    loaded, lmeta = read_safetensors(path)
    assert lmeta == {k: str(v) for k, v in meta.items()}, "metadata differs"
    assert list(loaded) == list(tensors), "tensor names/order differ"
    for k, v in tensors.items():
        assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape, k
        assert torch.equal(loaded[k], v.detach()), f"{k}: not bit-identical"
    return loaded, lmeta


def verify(fixtures):
    ok = True
    # Other generators (make_replay_fixture.py, make_onnx_fixtures.py) share the folder:
    # only this script's own files are checked.
    expected = {stem + ".safetensors" for stem, _, _ in fixtures}
    on_disk = set(os.listdir(FIXTURE_DIR))
    if not expected <= on_disk:
        print(f"FAIL: missing {sorted(expected - on_disk)}")
        ok = False
    for stem, tensors, meta in fixtures:
        path = os.path.join(FIXTURE_DIR, stem + ".safetensors")
        try:
            loaded, lmeta = check_identical(path, tensors, meta)
            CHECKS[family_of(stem)](loaded, lmeta)
            print(f"ok   {stem}.safetensors")
        except (AssertionError, OSError, KeyError, ValueError) as e:
            print(f"FAIL {stem}.safetensors: {e}")
            ok = False
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--verify", action="store_true", help="check the files on disk")
    args = ap.parse_args()
    torch.set_num_threads(1)
    fixtures = generate_all()
    if args.verify:
        sys.exit(0 if verify(fixtures) else 1)
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    total = 0
    for stem, tensors, meta in fixtures:
        path = os.path.join(FIXTURE_DIR, stem + ".safetensors")
        write_safetensors(path, tensors, meta)
        total += os.path.getsize(path)
        print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")
    print(f"total {len(fixtures)} files, {total} bytes")


if __name__ == "__main__":
    main()
