#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures of the kernels: Tests/Fixtures/kernels/{conv2d,batchnorm2d,pooling,dense}.safetensors.

For every case the inputs are drawn once in float32 and stored (PyTorch layouts: NCHW activations, [out, in, kh, kw]
weights). The same op then runs twice on those values, in float64 and in float32; the fixture keeps the float64
results as the expectations ("<case>.out", "<case>.dx", ...) and, for each of them, torch's own float32 error
("<case>.err32.<name>", relative L2 against float64), so that a test can state its tolerance as a multiple of what
float32 arithmetic costs PyTorch itself. Gradients are those of sum(out * dy) for the stored upstream gradient dy.
The geometry of every case is in the metadata ("cases", JSON).

Re-running it reproduces every tensor bit for bit (fixed seed, inputs drawn before any computation); only the
order of the metadata entries in the file header may change, as the safetensors library writes them from a hash map.

Needs: pip install torch safetensors numpy
Run from the repository root: scripts/reference/make_kernel_fixtures.py
"""
import json

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(20240601)
OUT_DIR = "Tests/Fixtures/kernels"


def rand(*shape, low=-1.0, high=1.0):
    return (torch.rand(*shape, dtype=torch.float64) * (high - low) + low).float()


def run_both(fn, inputs):
    """Runs fn on float64 and float32 copies of `inputs` (dict of float32 tensors; those whose name starts with
    'd' or 'rs_' are not differentiated); returns {name: float64 result} and {name: float32 relative L2 error}."""
    results = {}
    for dtype in (torch.float64, torch.float32):
        args = {}
        for k, v in inputs.items():
            t = v.to(dtype).clone()
            if not (k.startswith("d") or k.startswith("rs_")):
                t.requires_grad_(True)
            args[k] = t
        out = fn(args)
        extra = {}
        if isinstance(out, tuple):
            out, extra = out
        out.backward(args["dy"])
        res = {"out": out.detach()}
        for k, t in args.items():
            if t.requires_grad:
                res["d" + k] = t.grad.detach()
        res.update({k: v.detach() for k, v in extra.items()})
        results[dtype] = res
    expected = {k: v.double() for k, v in results[torch.float64].items()}
    err32 = {}
    for k, v in expected.items():
        diff = (results[torch.float32][k].double() - v).norm()
        err32[k] = torch.tensor([float(diff / max(v.norm(), 1e-30))], dtype=torch.float64)
    return expected, err32


def add_case(store, cases, name, meta, inputs, fn):
    expected, err32 = run_both(fn, inputs)
    for k, v in inputs.items():
        store[f"{name}.in.{k}"] = v.contiguous()
    for k, v in expected.items():
        store[f"{name}.{k}"] = v.contiguous()
        store[f"{name}.err32.{k}"] = err32[k]
    cases.append({"name": name, **meta})


def write(file, store, cases):
    save_file(store, f"{OUT_DIR}/{file}", metadata={"cases": json.dumps(cases), "torch": torch.__version__})


# Convolutions: every ResNet geometry, odd sizes.
store, cases = {}, []
for name, (n, cin, cout, h, w, k, s, p, bias) in {
    "conv_7x7s2p3": (2, 3, 8, 13, 11, 7, 2, 3, False),
    "conv_3x3s1p1_bias": (2, 8, 6, 7, 6, 3, 1, 1, True),
    "conv_3x3s2p1": (1, 5, 4, 9, 9, 3, 2, 1, False),
    "conv_1x1s1_bias": (2, 16, 8, 5, 5, 1, 1, 0, True),
    "conv_1x1s2": (2, 8, 16, 7, 7, 1, 2, 0, False),
}.items():
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    inputs = {"x": rand(n, cin, h, w), "weight": rand(cout, cin, k, k, low=-0.3, high=0.3),
              "dy": rand(n, cout, oh, ow)}
    if bias:
        inputs["bias"] = rand(cout)
    add_case(store, cases, name, {"kernel": k, "stride": s, "padding": p, "bias": bias}, inputs,
             lambda a, s=s, p=p: F.conv2d(a["x"], a["weight"], a.get("bias"), stride=s, padding=p))
write("conv2d.safetensors", store, cases)


# Batch norm: training (with running-stat update), groups, fused residual + ReLU, inference.
def batch_norm_groups(a, groups, relu, residual, training):
    """BatchNorm2d over `groups` equal slices of the batch, each with its own statistics; the running statistics
    take the mean of the groups' PyTorch updates."""
    xs = a["x"].chunk(groups)
    outs, means, vars_ = [], [], []
    for xg in xs:
        rm, rv = a["rs_mean"].clone(), a["rs_var"].clone()
        outs.append(F.batch_norm(xg, rm, rv, a["gamma"], a["beta"], training=training, momentum=0.1, eps=1e-5))
        means.append(rm)
        vars_.append(rv)
    out = torch.cat(outs)
    if residual:
        out = out + a["residual"]
    if relu:
        out = torch.relu(out)
    return out, {"running_mean": torch.stack(means).mean(0), "running_var": torch.stack(vars_).mean(0)}


store, cases = {}, []
for name, (n, c, h, w, groups, relu, residual, training) in {
    "bn_train": (2, 6, 5, 3, 1, False, False, True),
    "bn_train_residual_relu": (3, 4, 3, 5, 1, True, True, True),
    "bn_train_groups2_relu": (4, 5, 3, 3, 2, True, False, True),
    "bn_eval_relu": (2, 4, 3, 3, 1, True, False, False),
    "bn_train_wide_groups2_residual_relu": (4, 20, 3, 3, 2, True, True, True),
}.items():
    inputs = {"x": rand(n, c, h, w, low=-1, high=3), "gamma": rand(c, low=0.5, high=1.5), "beta": rand(c, low=-0.5, high=0.5),
              "rs_mean": rand(c, low=-0.5, high=0.5), "rs_var": rand(c, low=0.5, high=2.0), "dy": rand(n, c, h, w)}
    if residual:
        inputs["residual"] = rand(n, c, h, w)
    add_case(store, cases, name, {"groups": groups, "relu": relu, "residual": residual, "training": training}, inputs,
             lambda a, g=groups, r=relu, res=residual, t=training: batch_norm_groups(a, g, r, res, t))
write("batchnorm2d.safetensors", store, cases)

# Pooling.
store, cases = {}, []
add_case(store, cases, "maxpool_3x3s2p1", {"kernel": 3, "stride": 2, "padding": 1},
         {"x": rand(2, 4, 9, 8), "dy": rand(2, 4, 5, 4)},
         lambda a: F.max_pool2d(a["x"], 3, 2, 1))
add_case(store, cases, "maxpool_3x3s2p1_wide", {"kernel": 3, "stride": 2, "padding": 1},
         {"x": rand(1, 20, 7, 6), "dy": rand(1, 20, 4, 3)},
         lambda a: F.max_pool2d(a["x"], 3, 2, 1))
add_case(store, cases, "avgpool_global", {"out": 1}, {"x": rand(2, 5, 7, 7), "dy": rand(2, 5, 1, 1)},
         lambda a: F.adaptive_avg_pool2d(a["x"], 1))
add_case(store, cases, "avgpool_3x3_from_7x7", {"out": 3}, {"x": rand(2, 3, 7, 7), "dy": rand(2, 3, 3, 3)},
         lambda a: F.adaptive_avg_pool2d(a["x"], 3))
write("pooling.safetensors", store, cases)

# Linear, ReLU, residual add, L2 normalisation along channels (dim 1 of NCHW, as DenseCL's dense head does).
store, cases = {}, []
add_case(store, cases, "linear_bias", {}, {"x": rand(4, 10), "weight": rand(6, 10), "bias": rand(6), "dy": rand(4, 6)},
         lambda a: F.linear(a["x"], a["weight"], a["bias"]))
add_case(store, cases, "relu", {}, {"x": rand(2, 3, 4, 5), "dy": rand(2, 3, 4, 5)}, lambda a: torch.relu(a["x"]))
add_case(store, cases, "residual_add", {}, {"x": rand(2, 3, 4, 5), "other": rand(2, 3, 4, 5), "dy": rand(2, 3, 4, 5)},
         lambda a: a["x"] + a["other"])
add_case(store, cases, "l2normalize_channels", {}, {"x": rand(2, 8, 3, 3), "dy": rand(2, 8, 3, 3)},
         lambda a: F.normalize(a["x"], dim=1))
write("dense.safetensors", store, cases)
