#!/usr/bin/env python3
"""PyTorch reference of ONE DenseCL training step, world size 1, no key shuffle, as the official code
(WXinlong/DenseCL, openselfsup/models/densecl.py + DenseCLNeck + ContrastiveHead + torch SGD) performs it.

Order inside the step: query forward, EMA of the key encoder (parameters only), key forward (train-mode BN, so
the key encoder's running statistics move), global and dense InfoNCE with negatives from the queues as they were
before this step, enqueue of k / k2 at the pointers, backward of loss = (1-λ)·L_global + λ·L_dense, then
torch.optim.SGD (momentum, weight decay on every parameter). It runs in float64 (the reference) and float32 (to
measure how far float32 rounding alone moves each output).

What it writes:
* Tests/Fixtures/parity/<case>.safetensors (default action, every case): recipe metadata (the whole state is
  regenerated from Philox on both sides, see recipe.py), hyperparameters, and expectations of every output.
  Parameters are compared through their change in the step, never their new value (which differs from the old
  one by ~1e-3 relative, so a 2e-3 bound on it would pass with no update at all): `delta.encoder_k.<name>` =
  new - old of the EMA (omitted where the key encoder equals the query encoder: the test then requires no
  change); the query encoder's change must be -lr * its new momentum buffer (torch SGD), whose expectation is
  stored, so it costs no extra space. In MoCo-v2 mode (λ = 0) our step computes no dense head: the fixture
  then has no q_grid, k_grid or dense_match, and queue2 must stay unchanged (the official code still fills it).
  dense_match is stored with `margin.dense_match`
  (top-1 minus top-2 backbone cosine similarity, float64) and `simerr32.dense_match` (the float32 run's largest
  similarity error), so that a test may excuse near-ties.
* --bundle-out / --result-out: the full BUNDLE and RESULT files of the `densecl parity` contract (see
  docs/numerics.md); --check RESULT compares a RESULT written by our tool with this reference and exits 1 on a
  mismatch. --bundle-in runs the reference on any BUNDLE instead of a case's recipe.

Needs: pip install torch torchvision safetensors numpy
Run from the repository root:
  scripts/reference/densecl_step.py                                   # rewrite every fixture
  scripts/reference/densecl_step.py --case r18_dense --bundle-out /tmp/b.safetensors
  densecl parity --in /tmp/b.safetensors --out /tmp/ours.safetensors
  scripts/reference/densecl_step.py --bundle-in /tmp/b.safetensors --check /tmp/ours.safetensors
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recipe  # noqa: E402

FIXTURE_DIR = "Tests/Fixtures/parity"
WHOLE_MAX = 64  # expectations up to this size are stored whole, larger ones as sketches (fixture size)
HYPER_KEYS = ("arch", "lr", "sgd_momentum", "weight_decay", "temperature", "loss_lambda", "encoder_momentum")
BACKBONE_CHANNELS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048}

# ---------------------------------------------------------------------------------------------------------------
# The model (names equal to the official state_dict: encoder_q.0.<torchvision key>, encoder_q.1.mlp.*, ...)


class Backbone(nn.Module):
    """torchvision ResNet up to layer4 (no avgpool, no fc): [N,3,H,W] -> C5 [N,C,H/32,W/32]."""

    def __init__(self, arch):
        super().__init__()
        net = getattr(torchvision.models, arch)()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(net, name))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class DenseCLNeck(nn.Module):
    """Global MLP on the pooled C5 and dense 1x1-conv head on the native grid (num_grid = None).
    Returns (g [N,D], dense [N,D,S²], pooled dense [N,D]); nothing is normalised here."""

    def __init__(self, channels, hid, dim):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, hid), nn.ReLU(inplace=True), nn.Linear(hid, dim))
        self.mlp2 = nn.Sequential(nn.Conv2d(channels, hid, 1), nn.ReLU(inplace=True), nn.Conv2d(hid, dim, 1))
        self.pool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x):
        g = self.mlp(self.pool(x).flatten(1))
        dense = self.mlp2(x)
        pooled = self.pool(dense).flatten(1)
        return g, dense.flatten(2), pooled


class DenseCL(nn.Module):
    def __init__(self, arch, hid, dim, queue_len):
        super().__init__()
        channels = BACKBONE_CHANNELS[arch]
        self.encoder_q = nn.Sequential(Backbone(arch), DenseCLNeck(channels, hid, dim))
        self.encoder_k = nn.Sequential(Backbone(arch), DenseCLNeck(channels, hid, dim))
        for p in self.encoder_k.parameters():
            p.requires_grad = False
        self.register_buffer("queue", torch.zeros(dim, queue_len))
        self.register_buffer("queue2", torch.zeros(dim, queue_len))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
        self.register_buffer("queue2_ptr", torch.zeros(1, dtype=torch.long))


def encode(encoder, images):
    """One encoder pass: (g, dense, pooled dense, backbone features), L2-normalised along channels like the
    official forward_train; backbone features flattened to [N,C,S²]."""
    c5 = encoder[0](images)
    g, dense, pooled = encoder[1](c5)
    return (F.normalize(g, dim=1), F.normalize(dense, dim=1), F.normalize(pooled, dim=1),
            F.normalize(c5.flatten(2), dim=1))


def info_nce(pos, neg, temperature):
    """ContrastiveHead: cross-entropy of [pos | neg] / T with label 0, mean over rows."""
    logits = torch.cat([pos, neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(logits.size(0), dtype=torch.long))


def enqueue(queue, ptr, keys):
    start = int(ptr[0])
    queue[:, start:start + keys.size(0)] = keys.t()
    ptr[0] = (start + keys.size(0)) % queue.size(1)


def densecl_step(bundle, hp, dtype, relu_masks=None):
    """One official step on a BUNDLE dict (numpy arrays under the contract's names). Returns (outputs, state):
    outputs = losses, q, k, q_grid, k_grid, dense_match, sim, grad.*; state = every BUNDLE tensor after the step.
    relu_masks, when a list, receives the sign mask of every ReLU input in call order."""
    dim, queue_len = bundle["queue"].shape
    hid = bundle["encoder_q.1.mlp.0.weight"].shape[0]
    model = DenseCL(hp["arch"], hid, dim, queue_len)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bundle.items()
             if not k.startswith(("im_", "optimizer."))}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, f"unexpected tensors in the bundle: {unexpected}"
    assert all(m.endswith("num_batches_tracked") for m in missing), f"missing from the bundle: {missing}"
    model = model.to(dtype).train()
    if relu_masks is not None:
        for module in model.modules():
            if isinstance(module, nn.ReLU):
                module.register_forward_pre_hook(lambda _, inputs: relu_masks.append(inputs[0].detach() > 0))
    im_q = torch.from_numpy(bundle["im_q"]).to(dtype)
    im_k = torch.from_numpy(bundle["im_k"]).to(dtype)
    params_q = dict(model.encoder_q.named_parameters())
    opt = torch.optim.SGD(params_q.values(), lr=hp["lr"], momentum=hp["sgd_momentum"],
                          weight_decay=hp["weight_decay"])
    for name, p in params_q.items():
        key = f"optimizer.momentum_buffer.encoder_q.{name}"
        if key in bundle:
            opt.state[p]["momentum_buffer"] = torch.from_numpy(bundle[key]).to(dtype).clone()

    m, lam, t = hp["encoder_momentum"], hp["loss_lambda"], hp["temperature"]
    q, q_grid, _, q_b = encode(model.encoder_q, im_q)
    with torch.no_grad():
        for pq, pk in zip(model.encoder_q.parameters(), model.encoder_k.parameters()):
            pk.data = pk.data * m + pq.data * (1.0 - m)
        k, k_grid, k2, k_b = encode(model.encoder_k, im_k)

    l_pos = (q * k).sum(1, keepdim=True)
    l_neg = q @ model.queue.clone().detach()
    sim = q_b.transpose(1, 2) @ k_b  # [N, S², S²]: query position i against key position j
    match = sim.max(dim=2)[1]
    matched_k = torch.gather(k_grid, 2, match.unsqueeze(1).expand(-1, k_grid.size(1), -1))
    l_pos_dense = (q_grid * matched_k).sum(1).reshape(-1, 1)
    l_neg_dense = q_grid.transpose(1, 2).reshape(-1, dim) @ model.queue2.clone().detach()
    single = info_nce(l_pos, l_neg, t) * (1 - lam)
    dense = info_nce(l_pos_dense, l_neg_dense, t) * lam
    loss = single + dense
    with torch.no_grad():
        enqueue(model.queue, model.queue_ptr, k)
        enqueue(model.queue2, model.queue2_ptr, k2)

    opt.zero_grad()
    loss.backward()
    out = {"loss": loss, "loss_contra_single": single, "loss_contra_dense": dense, "q": q, "k": k,
           "q_grid": q_grid, "k_grid": k_grid, "dense_match": match, "sim": sim}
    out.update({f"grad.encoder_q.{n}": p.grad.clone() for n, p in params_q.items()})
    opt.step()

    new_state = {n: v for n, v in model.state_dict().items() if not n.endswith("num_batches_tracked")}
    new_state.update({f"optimizer.momentum_buffer.encoder_q.{n}": opt.state[p]["momentum_buffer"]
                      for n, p in params_q.items()})
    as_np = lambda d: {n: v.detach().reshape(v.shape).numpy() for n, v in d.items()}  # noqa: E731
    out = as_np(out)
    for name in ("loss", "loss_contra_single", "loss_contra_dense"):
        out[name] = out[name].reshape(1)
    return out, as_np(new_state)


# ---------------------------------------------------------------------------------------------------------------
# Cases: each state is generated from a recipe (recipe.py), so that the fixture stays small.

CASES = {
    # ResNet-18, λ = 0.5, a state far from initialisation: key encoder != query encoder, momentum buffers set,
    # BN running statistics away from (0, 1), queue pointers not at 0 and different from each other.
    "r18_dense": dict(arch="resnet18", batch=4, height=64, width=64, hid=32, dim=16, queue_len=16, seed=1811,
                      perturbed=True, queue_ptr=4, queue2_ptr=8,
                      hyper=dict(lr=0.05, sgd_momentum=0.9, weight_decay=0.1, temperature=0.2, loss_lambda=0.5,
                                 encoder_momentum=0.99)),
    # ResNet-18, λ = 0 (MoCo-v2 mode), perturbed state.
    "r18_mocov2": dict(arch="resnet18", batch=4, height=64, width=64, hid=32, dim=16, queue_len=16, seed=1802,
                       perturbed=True, queue_ptr=8, queue2_ptr=8,
                       hyper=dict(lr=0.05, sgd_momentum=0.9, weight_decay=0.1, temperature=0.2, loss_lambda=0.0,
                                  encoder_momentum=0.99)),
    # ResNet-18 at the official initialisation, queues about to wrap (ptr = K - B), a non-square 96x64 input
    # (a 3x2 grid, so that row-major position order is tested).
    "r18_wrap": dict(arch="resnet18", batch=4, height=96, width=64, hid=32, dim=16, queue_len=16, seed=1803,
                     perturbed=False, queue_ptr=12, queue2_ptr=12,
                     hyper=dict(lr=0.05, sgd_momentum=0.9, weight_decay=0.1, temperature=0.2, loss_lambda=0.5,
                                encoder_momentum=0.999)),
    # A tiny ResNet-50 at the official initialisation: 64 px, batch 2.
    "r50_tiny": dict(arch="resnet50", batch=2, height=64, width=64, hid=32, dim=16, queue_len=8, seed=5001,
                     perturbed=False, queue_ptr=2, queue2_ptr=2,
                     hyper=dict(lr=0.05, sgd_momentum=0.9, weight_decay=0.1, temperature=0.2, loss_lambda=0.5,
                                encoder_momentum=0.999)),
}


def uniform(name, shape, bound, low=None):
    return {"name": name, "shape": list(shape), "kind": "uniform",
            "low": -bound if low is None else low, "high": bound}


def const(name, shape, value):
    return {"name": name, "shape": list(shape), "kind": "const", "value": value}


def case_recipe(case):
    """Recipe entries for the whole BUNDLE of a case (state, images, momentum buffers) and its integer inputs.

    Initialisation as the official code: backbone convs and global-MLP weights Kaiming fan_in (here its uniform
    form, same variance: bound sqrt(6/fan_in)), global-MLP biases 0, dense-head convs PyTorch's default
    U(±1/sqrt(fan_in)) for weight and bias, BN gamma 1 / beta 0, running stats (0, 1), key encoder = query
    encoder. A perturbed state moves every one of these away from its default."""
    perturbed = case["perturbed"]
    model = DenseCL(case["arch"], case["hid"], case["dim"], case["queue_len"])
    entries = []
    for name, p in model.encoder_q.named_parameters():
        full, shape = f"encoder_q.{name}", p.shape
        fan_in = int(np.prod(shape[1:])) if p.dim() > 1 else None
        if ".mlp2." in name:  # PyTorch's default Conv2d init, for weight and bias alike
            fan = int(np.prod(model.encoder_q.get_parameter(name.rsplit(".", 1)[0] + ".weight").shape[1:]))
            entries.append(uniform(full, shape, 1 / math.sqrt(fan)))
        elif p.dim() > 1:
            entries.append(uniform(full, shape, math.sqrt(6 / fan_in)))
        elif ".mlp." in name:
            entries.append(uniform(full, shape, 0.1) if perturbed else const(full, shape, 0.0))
        elif name.endswith("weight"):  # BN gamma
            entries.append(uniform(full, shape, 1.2, low=0.8) if perturbed else const(full, shape, 1.0))
        else:  # BN beta
            entries.append(uniform(full, shape, 0.2) if perturbed else const(full, shape, 0.0))
    for e in list(entries):
        noise = 0.0
        if perturbed:
            noise = 0.05 if e["kind"] == "const" else 0.1 * (e["high"] - e["low"]) / 2
        entries.append({"name": e["name"].replace("encoder_q.", "encoder_k.", 1), "shape": e["shape"],
                        "kind": "uniform_plus", "base": e["name"], "low": -noise, "high": noise})
    for prefix in ("encoder_q", "encoder_k"):
        for name, b in getattr(model, prefix).named_buffers():
            full = f"{prefix}.{name}"
            if name.endswith("running_mean"):
                entries.append(uniform(full, b.shape, 0.5) if perturbed else const(full, b.shape, 0.0))
            elif name.endswith("running_var"):
                entries.append(uniform(full, b.shape, 2.0, low=0.5) if perturbed else const(full, b.shape, 1.0))
    if perturbed:  # momentum buffers of a tenth of each parameter's spread
        for e in entries[:len(list(model.encoder_q.parameters()))]:
            entries.append(uniform(f"optimizer.momentum_buffer.{e['name']}", e["shape"], 0.05 * (e["high"] - e["low"])))
    for name in ("queue", "queue2"):
        entries.append({**uniform(name, (case["dim"], case["queue_len"]), 1.0), "kind": "unit_columns"})
    images = (case["batch"], 3, case["height"], case["width"])
    entries.append(uniform("im_q", images, 2.0))
    entries.append({"name": "im_k", "shape": list(images), "kind": "uniform_plus", "base": "im_q",
                    "low": -0.5, "high": 0.5})
    ints = {"queue_ptr": np.array([case["queue_ptr"]], dtype=np.int64),
            "queue2_ptr": np.array([case["queue2_ptr"]], dtype=np.int64)}
    return entries, ints


def case_bundle(case):
    entries, ints = case_recipe(case)
    bundle = recipe.generate(entries, case["seed"])
    bundle.update(ints)
    hyper = {"arch": case["arch"], **case["hyper"]}
    return entries, ints, bundle, hyper


# ---------------------------------------------------------------------------------------------------------------
# What is compared, and how closely (mirrored in Tests/DenseCLModelTests/ParityTests.swift; the reasons are in
# docs/numerics.md).

LOSS_TOL = 1e-4        # relative: the bound for the three losses
TENSOR_TOL = 2e-3      # relative L2 per tensor: gradients, parameter changes, every other float output
CALIBRATION = 4.0      # where torch's own float32 run is off by err32 (ReLU masks flipped by rounding), allow 4x that
UNCHANGED_REL = 2**-22  # a parameter the reference leaves unchanged may move by float32 rounding: <= 2 ulp each
OUTPUTS = ("loss", "loss_contra_single", "loss_contra_dense", "q", "k", "q_grid", "k_grid")
DENSE_ONLY = ("q_grid", "k_grid", "queue2", "queue2_ptr")  # not produced / not touched in MoCo-v2 mode


def tolerance(name, err32):
    return max(LOSS_TOL if name.startswith("loss") else TENSOR_TOL, CALIBRATION * err32)


def match_excused(margin, simerr32):
    """Positions whose float64 top-2 backbone similarities are so close that float32 rounding may swap them."""
    return margin <= 4 * simerr32 + 1e-6


def comparable(bundle, result):
    """name -> float64 array for every checked float output present in `result` (a RESULT-like dict): losses,
    features, gradients, running statistics, momentum buffers, queues, pointers, and for every parameter its
    change in this step (`delta.<name>`). dense_match is compared apart."""
    res = {}
    for n, v in result.items():
        if n in OUTPUTS or n.startswith(("grad.", "optimizer.", "queue")) or "running_" in n:
            res[n] = np.asarray(v, dtype=np.float64)
        elif n.startswith(("encoder_q.", "encoder_k.")) and not n.endswith("num_batches_tracked"):
            res[f"delta.{n}"] = np.asarray(v, dtype=np.float64) - np.asarray(bundle[n], dtype=np.float64)
    return res


def unchanged_by_reference(bundle, name, delta):
    """True for a `delta.` whose reference change is pure rounding (the EMA of a key encoder equal to the query)."""
    return name.startswith("delta.") and np.linalg.norm(delta) <= 1e-9 * np.linalg.norm(bundle[name[6:]])


def relative_l2(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


def reference_runs(bundle, hyper):
    """(float64 outputs, state), (float32 outputs, state) and the float32 run's number of flipped ReLU masks."""
    masks64, masks32 = [], []
    run64 = densecl_step(bundle, hyper, torch.float64, masks64)
    run32 = densecl_step(bundle, hyper, torch.float32, masks32)
    flips = sum(int((a != b).sum()) for a, b in zip(masks64, masks32))
    return run64, run32, flips


def write_fixture(name, case, path):
    entries, ints, bundle, hyper = case_bundle(case)
    (out64, state64), (out32, state32), flips = reference_runs(bundle, hyper)
    ref, ref32 = comparable(bundle, {**out64, **state64}), comparable(bundle, {**out32, **state32})
    mocov2 = hyper["loss_lambda"] == 0
    tensors = {f"input.{k}": v for k, v in ints.items()}
    for n, v in ref.items():
        if n.startswith("delta.encoder_q."):
            continue  # torch's SGD moves p by -lr * (new momentum buffer), which is stored: the test checks that
        if unchanged_by_reference(bundle, n, v) or (mocov2 and n in DENSE_ONLY):
            continue  # the test requires these to be unchanged
        tensors.update(recipe.expectation(n, v, ref32[n], small=WHOLE_MAX))
    if not mocov2:
        tensors["out.dense_match"] = out64["dense_match"].astype(np.int64)
        top2 = np.sort(out64["sim"], axis=2)[:, :, -2:]
        tensors["margin.dense_match"] = top2[:, :, 1] - top2[:, :, 0]
        tensors["simerr32.dense_match"] = np.array([np.abs(out32["sim"] - out64["sim"]).max()])
    metadata = recipe.recipe_metadata(entries, case["seed"])
    metadata.update({k: str(v) for k, v in hyper.items()})
    metadata.update({k: str(case[k]) for k in ("batch", "height", "width", "hid", "dim", "queue_len")})
    metadata.update({"case": name, "relu_flips32": str(flips)})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path, metadata=metadata)
    err = sorted(float(tensors[k][0]) for k in tensors if k.startswith("err32."))
    print(f"{path}: {os.path.getsize(path) / 1024:.0f} KB, loss {out64['loss'][0]:.6f}, "
          f"torch float32: {flips} ReLU masks flipped, dense_match flips "
          f"{int((out32['dense_match'] != out64['dense_match']).sum())}, err32 median {err[len(err) // 2]:.1e} "
          f"max {err[-1]:.1e}")


def check(bundle, hyper, result_path):
    """Compares a RESULT written by our tool with the float64 reference; returns the number of failures."""
    (out64, state64), (out32, state32), _ = reference_runs(bundle, hyper)
    ref, ref32 = comparable(bundle, {**out64, **state64}), comparable(bundle, {**out32, **state32})
    ours = load_file(result_path)
    mine = comparable(bundle, ours)
    mocov2 = hyper["loss_lambda"] == 0
    failures, compared = 0, 0
    for n in sorted(ref):
        if n not in mine and not (mocov2 and n in ("q_grid", "k_grid")):
            print(f"MISSING {n}")
            failures += 1
            continue
        compared += 1
        if mocov2 and n in DENSE_ONLY:
            ok, what = n not in mine or np.array_equal(mine[n], bundle[n]), "must be unchanged in MoCo-v2 mode"
        elif unchanged_by_reference(bundle, n, ref[n]):
            ok = np.linalg.norm(mine[n]) <= UNCHANGED_REL * np.linalg.norm(bundle[n[6:]])
            what = f"moved by {np.linalg.norm(mine[n]):.1e}; the reference leaves it unchanged"
        else:
            err32, rel = relative_l2(ref32[n], ref[n]), relative_l2(mine[n], ref[n])
            tol = tolerance(n, err32)
            ok, what = rel <= tol, f"relL2 {rel:.2e} > tol {tol:.1e} (torch float32: {err32:.1e})"
        if not ok:
            failures += 1
            print(f"FAIL {n}: {what}")
    if not mocov2:
        if "dense_match" not in ours:
            print("MISSING dense_match")
            failures += 1
        else:
            top2 = np.sort(out64["sim"], axis=2)[:, :, -2:]
            differ = ours["dense_match"] != out64["dense_match"]
            bad = differ & ~match_excused(top2[:, :, 1] - top2[:, :, 0], np.abs(out32["sim"] - out64["sim"]).max())
            print(f"dense_match: {int(differ.sum())} of {differ.size} differ, {int(bad.sum())} beyond near-ties")
            failures += int(bad.any())
    print(f"{compared} tensors compared, {failures} failures")
    return failures


def write_bundle(bundle, hyper, path):
    tensors = {k: np.ascontiguousarray(v) for k, v in bundle.items()}
    save_file(tensors, path, metadata={k: str(hyper[k]) for k in HYPER_KEYS})


def write_result(out, state, path):
    tensors = {k: v for k, v in out.items() if k != "sim"}
    tensors.update(state)
    tensors = {k: np.ascontiguousarray(v if v.dtype == np.int64 else v.astype(np.float32)) for k, v in tensors.items()}
    save_file(tensors, path)


def load_bundle(path):
    import safetensors
    with safetensors.safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    hyper = {k: (meta[k] if k == "arch" else float(meta[k])) for k in HYPER_KEYS}
    return load_file(path), hyper


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", choices=sorted(CASES), help="one case (default: write every fixture)")
    ap.add_argument("--bundle-in", help="run the reference on this BUNDLE instead of a case's recipe")
    ap.add_argument("--bundle-out", help="write the case's full BUNDLE here")
    ap.add_argument("--result-out", help="write the float64 reference's RESULT here (as float32)")
    ap.add_argument("--check", metavar="RESULT", help="compare a RESULT written by `densecl parity`")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not (args.bundle_out or args.result_out or args.check):
        for name in [args.case] if args.case else sorted(CASES):
            write_fixture(name, CASES[name], os.path.join(FIXTURE_DIR, f"{name}.safetensors"))
        return 0
    if args.bundle_in:
        bundle, hyper = load_bundle(args.bundle_in)
    elif args.case:
        _, _, bundle, hyper = case_bundle(CASES[args.case])
    else:
        ap.error("--bundle-out, --result-out and --check need --case or --bundle-in")
    if args.bundle_out:
        write_bundle(bundle, hyper, args.bundle_out)
    if args.result_out:
        write_result(*densecl_step(bundle, hyper, torch.float64), args.result_out)
    if args.check:
        return 1 if check(bundle, hyper, args.check) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
