#!/usr/bin/env python3
"""How much one DenseCL step amplifies a tiny perturbation of the weights: PyTorch float64, PyTorch float32 and
our `densecl parity`, on the same bundles (issue 5 follow-up: is the divergence of multi-step runs inherent?).

For a parity case of densecl_step.py (optionally with another batch size or λ), every parameter of both encoders
is moved by one float32 ulp with a seeded random sign (relative ~6e-8 .. 1.2e-7, the smallest change a float32
state can carry; the float64 run additionally uses an exact relative 1e-8). Each implementation runs the step on
the base and on the perturbed bundle; per gradient tensor we print

    amplification = (||grad(perturbed) - grad(base)|| / ||grad(base)||) / (||Δθ|| / ||θ||)

(median and largest over tensors, and the whole gradient as one vector), and for reference how far each float32
implementation is from float64 at the base point (`err32`). In the float64 runs we also count the discrete
events a perturbation can trigger: ReLU masks flipped, dense_match entries changed (with the smallest top-2
similarity margin), and BatchNorm channels with few values per statistic and a variance near eps.

Needs: pip install torch torchvision safetensors numpy
Run from the repository root after `swift build -c release`:
  scripts/reference/perturbation_sensitivity.py --case r18_dense
  scripts/reference/perturbation_sensitivity.py --case r18_dense --batch 8
  scripts/reference/perturbation_sensitivity.py --case r18_mocov2 --batch 2
Bundles and results (~300 MB per run of ours) go to --work (default: the system's temporary directory).
"""
import argparse
import copy
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import densecl_step as ref  # noqa: E402

BN_EPS = 1e-5


def is_parameter(name):
    """Trainable tensors of either encoder (not running statistics, queues, images or momentum buffers)."""
    return name.startswith(("encoder_q.", "encoder_k.")) and "running_" not in name and "num_batches" not in name


def perturb_ulp(bundle, seed):
    """Every parameter moved by one float32 ulp up or down (sign from a seeded generator)."""
    rng = np.random.default_rng(seed)
    out = dict(bundle)
    for name in sorted(bundle):
        if is_parameter(name):
            v = bundle[name].astype(np.float32)
            up = rng.random(v.shape) < 0.5
            out[name] = np.where(up, np.nextafter(v, np.float32(np.inf)), np.nextafter(v, np.float32(-np.inf)))
    return out


def perturb_relative(bundle, seed, eps):
    """Every parameter multiplied by 1 ± eps in float64 (the float64 reference accepts float64 arrays)."""
    rng = np.random.default_rng(seed)
    out = dict(bundle)
    for name in sorted(bundle):
        if is_parameter(name):
            v = bundle[name].astype(np.float64)
            out[name] = v * (1 + eps * np.where(rng.random(v.shape) < 0.5, 1.0, -1.0))
    return out


def relative_change(base, other):
    num = sum(float(np.sum((other[n].astype(np.float64) - base[n].astype(np.float64)) ** 2))
              for n in base if is_parameter(n))
    den = sum(float(np.sum(base[n].astype(np.float64) ** 2)) for n in base if is_parameter(n))
    return (num / den) ** 0.5


class Probe:
    """Records, in call order, every ReLU input's sign mask and every BatchNorm input's per-channel variance
    and number of values per statistic (train mode: the batch statistics)."""

    def __init__(self):
        self.relu, self.bn, self.near_zero = [], [], np.zeros(3, dtype=np.int64)

    def __enter__(self):
        def hook(module, inputs):
            x = inputs[0].detach()
            if isinstance(module, nn.ReLU):
                self.relu.append(x > 0)
                a = x.abs()
                self.near_zero += np.array([int((a < t).sum()) for t in (1e-7, 1e-6, 1e-5)])
            elif isinstance(module, nn.BatchNorm2d) and module.training:
                var = x.double().var(dim=(0, 2, 3), unbiased=False)
                self.bn.append((var, x.numel() // x.shape[1], module.weight.detach().double()))
        self.handle = nn.modules.module.register_module_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def torch_step(bundle, hyper, dtype):
    # The model is built in the default dtype before the bundle is loaded into it: float64 keeps a float64
    # perturbation that a float32 model would round away.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with Probe() as probe:
            out, _ = ref.densecl_step(bundle, hyper, dtype)
    finally:
        torch.set_default_dtype(previous)
    return out, probe


def our_step(bundle, hyper, densecl, work, tag):
    bpath, rpath = os.path.join(work, f"sens_{tag}_bundle.safetensors"), os.path.join(work, f"sens_{tag}_result.safetensors")
    ref.write_bundle({k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in bundle.items()}, hyper, bpath)
    subprocess.run([densecl, "parity", "--in", bpath, "--out", rpath], check=True)
    out = load_file(rpath)
    os.remove(bpath)
    os.remove(rpath)
    return out


def grads(out):
    return {n: np.asarray(v, dtype=np.float64) for n, v in out.items() if n.startswith("grad.")}


def rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def summary(label, base, pert, dtheta, top=3):
    """One line: amplification median / max over tensors and of the whole gradient, and the worst tensors."""
    gb, gp = grads(base), grads(pert)
    per = {n: rel(gp[n], gb[n]) / dtheta for n in gb if np.linalg.norm(gb[n]) > 0}
    whole = rel(np.concatenate([gp[n].ravel() for n in sorted(gb)]), np.concatenate([gb[n].ravel() for n in sorted(gb)]))
    vals = sorted(per.values())
    worst = sorted(per, key=per.get, reverse=True)[:top]
    print(f"  {label:<28} whole {whole / dtheta:9.3g}  median {vals[len(vals) // 2]:9.3g}  max {vals[-1]:9.3g}   "
          + ", ".join(f"{n[len('grad.encoder_q.'):]} {per[n]:.2g}" for n in worst))
    return per


def noise(label, out32, out64):
    g32, g64 = grads(out32), grads(out64)
    errs = sorted(rel(g32[n], g64[n]) for n in g64 if np.linalg.norm(g64[n]) > 0)
    print(f"  {label:<28} err32 of gradients vs float64: median {errs[len(errs) // 2]:.2g}, max {errs[-1]:.2g}")


def events(label, base, pert, pb, pp):
    relu_flips = [int((a != b).sum()) for a, b in zip(pb.relu, pp.relu)]
    where = [f"call {i} {tuple(pb.relu[i].shape)}" for i, f in enumerate(relu_flips) if f]
    line = f"  {label:<28} ReLU masks flipped {sum(relu_flips)} of {sum(int(m.numel()) for m in pb.relu)} ({', '.join(where[:4])})"
    if "dense_match" in base:
        changed = int((base["dense_match"] != pert["dense_match"]).sum())
        top2 = np.sort(base["sim"], axis=2)[:, :, -2:]
        margin = top2[:, :, 1] - top2[:, :, 0]
        line += f", dense_match changed {changed} of {margin.size} (smallest top-2 margin {margin.min():.2g})"
    print(line)


def bn_report(probe):
    """BatchNorm layers with the fewest values per statistic, and channels whose variance is near eps."""
    rows = []
    for i, (var, count, gamma) in enumerate(probe.bn):
        invstd = 1 / torch.sqrt(var + BN_EPS)
        rows.append((count, i, int((var < 100 * BN_EPS).sum()), float(var.min()), float((gamma * invstd).max())))
    small = min(r[0] for r in rows)
    tight = [r for r in rows if r[0] == small]
    print(f"  BatchNorm: {len(rows)} calls; fewest values per statistic {small} in {len(tight)} calls; "
          f"there: channels with var < 100 eps {sum(r[2] for r in tight)}, smallest var {min(r[3] for r in tight):.2g}, "
          f"largest gamma/std {max(r[4] for r in tight):.3g}; elsewhere largest gamma/std "
          f"{max([r[4] for r in rows if r[0] != small] or [0]):.3g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", default="r18_dense", choices=sorted(ref.CASES))
    ap.add_argument("--batch", type=int, help="batch size instead of the case's")
    ap.add_argument("--lam", type=float, help="loss λ instead of the case's")
    ap.add_argument("--seed", type=int, default=20261130, help="seed of the perturbation's signs")
    ap.add_argument("--densecl", default=".build/release/densecl", help="our tool (default: the release build)")
    ap.add_argument("--work", default=tempfile.gettempdir(), help="directory for the temporary bundles")
    ap.add_argument("--no-ours", action="store_true", help="PyTorch only")
    args = ap.parse_args()
    torch.set_num_threads(1)

    case = copy.deepcopy(ref.CASES[args.case])
    if args.batch:
        case["batch"] = args.batch
    if args.lam is not None:
        case["hyper"]["loss_lambda"] = args.lam
    _, _, base, hyper = ref.case_bundle(case)
    ulp = perturb_ulp(base, args.seed)
    d_ulp = relative_change(base, ulp)
    d_1e8 = 1e-8
    print(f"{args.case}: batch {case['batch']}, {case['height']}x{case['width']} px, λ {hyper['loss_lambda']}; "
          f"perturbation: 1 ulp per parameter = {d_ulp:.3g} relative, and 1e-8 relative in float64")

    b64, pb64 = torch_step(base, hyper, torch.float64)
    p64, pp64 = torch_step(ulp, hyper, torch.float64)
    r64, pr64 = torch_step(perturb_relative(base, args.seed, d_1e8), hyper, torch.float64)
    b32, _ = torch_step(base, hyper, torch.float32)
    p32, _ = torch_step(ulp, hyper, torch.float32)
    print("amplification (relative gradient change / relative weight change):")
    summary("torch float64, 1e-8", b64, r64, d_1e8)
    summary("torch float64, 1 ulp", b64, p64, d_ulp)
    summary("torch float32, 1 ulp", b32, p32, d_ulp)
    if not args.no_ours:
        o_b = our_step(base, hyper, args.densecl, args.work, "base")
        o_p = our_step(ulp, hyper, args.densecl, args.work, "ulp")
        summary("ours (float32), 1 ulp", o_b, o_p, d_ulp)
        if "dense_match" in o_b:
            print(f"  ours: dense_match changed {int((o_b['dense_match'] != o_p['dense_match']).sum())}")
    print("rounding at the base point:")
    noise("torch float32", b32, b64)
    if not args.no_ours:
        noise("ours", o_b, b64)
    print("discrete events in float64 (base vs perturbed):")
    events("1e-8", b64, r64, pb64, pr64)
    events("1 ulp", b64, p64, pb64, pp64)
    print(f"  ReLU inputs with |x| < 1e-7, 1e-6, 1e-5: {', '.join(str(int(c)) for c in pb64.near_zero)}")
    bn_report(pb64)
    return 0


if __name__ == "__main__":
    sys.exit(main())
