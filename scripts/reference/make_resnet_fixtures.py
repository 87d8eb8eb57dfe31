#!/usr/bin/env python3
"""Writes the ResNet fixtures under Tests/Fixtures/resnet/ from torchvision's ResNets.

* torchvision_state_dict.json: the state-dict keys, shapes and dtypes of torchvision's resnet18/34/50/101, in
  order, so that the Swift name tables are checked against the real thing (the `fc.*` entries included: the
  importer must skip them).
* <case>.safetensors: whole-backbone golden fixtures (C5 output, input gradient, every parameter gradient and, in
  train mode, the updated BatchNorm running statistics) in the shared reference-recipe format (recipe.py): the
  input, the upstream gradient and every parameter and buffer are generated from the recipe stored in the file's
  metadata, so no weights are committed; expectations come from a float64 run of the same model, stored whole
  when small and as 64-number sketches otherwise, each with the float32 run's own error (`err32.<name>`).

BatchNorm with G groups (the key encoder's shuffle-BN emulation) normalises each of G contiguous equal chunks of
the batch with its own statistics and moves the running statistics by the mean of the chunks' statistics
(unbiased variances), as the project's BatchNorm kernel documents.

Needs: pip install torch torchvision safetensors numpy
Run from the repository root: scripts/reference/make_resnet_fixtures.py
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from safetensors.numpy import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
import recipe  # noqa: E402

OUT = "Tests/Fixtures/resnet"
ARCHS = ["resnet18", "resnet34", "resnet50", "resnet101"]

# (file name, arch, batch, height, width, train, BN groups, largest tensor stored whole)
CASES = [
    ("resnet18_eval", "resnet18", 2, 45, 61, False, 1, recipe.SMALL),
    ("resnet18_train", "resnet18", 4, 64, 64, True, 1, recipe.SMALL),
    ("resnet18_train_groups2", "resnet18", 4, 48, 40, True, 2, recipe.SMALL),
    # A bottleneck network: whole BatchNorm vectors of ResNet-50 would weigh ~1 MB, so only tiny ones are whole.
    ("resnet50_train", "resnet50", 2, 64, 64, True, 1, 64),
]
SEED = 20260530


def write_names():
    table = {}
    for arch in ARCHS:
        model = getattr(torchvision.models, arch)()
        table[arch] = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in model.state_dict().items()]
    with open(f"{OUT}/torchvision_state_dict.json", "w") as f:
        json.dump(table, f, separators=(",", ":"))
        f.write("\n")


def grouped_batch_norm(bn, groups):
    """Replaces bn.forward by BatchNorm over `groups` contiguous chunks of the batch (train mode)."""
    def forward(x):
        if not bn.training or groups == 1:
            return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.training,
                                bn.momentum, bn.eps)
        chunks = x.chunk(groups)
        out = [F.batch_norm(c, None, None, bn.weight, bn.bias, True, 0.0, bn.eps) for c in chunks]
        with torch.no_grad():
            mean = torch.stack([c.mean((0, 2, 3)) for c in chunks]).mean(0)
            var = torch.stack([c.var((0, 2, 3), unbiased=True) for c in chunks]).mean(0)
            bn.running_mean.mul_(1 - bn.momentum).add_(bn.momentum * mean)
            bn.running_var.mul_(1 - bn.momentum).add_(bn.momentum * var)
        bn.num_batches_tracked += 1
        return torch.cat(out)
    bn.forward = forward


def make_recipe(model, batch, height, width):
    entries = [{"name": "input", "shape": [batch, 3, height, width], "kind": "uniform", "low": -2.0, "high": 2.0}]
    for name, p in model.named_parameters():
        if p.dim() == 4:
            # Same variance as the Kaiming fan_in init, so activations stay of order one through the network.
            bound = math.sqrt(3.0 * 2.0 / (p.shape[1] * p.shape[2] * p.shape[3]))
            entries.append({"name": name, "shape": list(p.shape), "kind": "uniform", "low": -bound, "high": bound})
        elif name.endswith(".weight"):
            entries.append({"name": name, "shape": list(p.shape), "kind": "uniform", "low": 0.5, "high": 1.5})
        else:
            entries.append({"name": name, "shape": list(p.shape), "kind": "uniform", "low": -0.3, "high": 0.3})
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            entries.append({"name": name, "shape": list(b.shape), "kind": "uniform", "low": -0.2, "high": 0.2})
        elif name.endswith("running_var"):
            entries.append({"name": name, "shape": list(b.shape), "kind": "uniform", "low": 0.5, "high": 2.0})
    return entries


def run(arch, tensors, train, groups, dtype, batch, height, width):
    """One forward and backward of `arch` without fc: returns {name: float64 ndarray} of every expectation."""
    model = getattr(torchvision.models, arch)()
    model.fc = torch.nn.Identity()
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if name.endswith("num_batches_tracked"):
                t.fill_(3)
            else:
                t.copy_(torch.from_numpy(tensors[name]))
    model = model.to(dtype)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            grouped_batch_norm(m, groups)
    model.train(train)
    backbone = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool,
                                   model.layer1, model.layer2, model.layer3, model.layer4)
    x = torch.from_numpy(tensors["input"]).to(dtype).requires_grad_(True)
    y = backbone(x)
    c5 = y.shape[1:]
    grad_output = recipe.generate([{"name": "grad_output", "shape": [batch, *c5], "kind": "uniform",
                                    "low": -1.0, "high": 1.0}], SEED)["grad_output"]
    y.backward(torch.from_numpy(grad_output).to(dtype))
    out = {"output": y.detach(), "grad.input": x.grad}
    for name, p in model.named_parameters():
        out[f"grad.{name}"] = p.grad
    if train:
        for name, b in model.named_buffers():
            out[name] = b
    return {k: v.double().numpy() for k, v in out.items()}, list(c5)


def expect(name, v64, v32, whole_limit):
    if v64.size <= whole_limit:
        return recipe.expectation(name, v64, v32)
    # Sketch even when recipe.SMALL would store the tensor whole (the size budget of a ResNet-50 fixture).
    err = np.linalg.norm(v32 - v64) / max(np.linalg.norm(v64), 1e-30)
    return {f"sketch.{name}": recipe.sketch(v64), f"norm.{name}": np.array([np.linalg.norm(v64)]),
            f"head.{name}": v64.reshape(-1)[:16], f"err32.{name}": np.array([err])}


def write_case(file_name, arch, batch, height, width, train, groups, whole_limit):
    probe = getattr(torchvision.models, arch)()
    entries = make_recipe(probe, batch, height, width)
    tensors = recipe.generate(entries, SEED)
    r64, c5 = run(arch, tensors, train, groups, torch.float64, batch, height, width)
    r32, _ = run(arch, tensors, train, groups, torch.float32, batch, height, width)
    # grad_output is generated by the recipe too (its shape is known only after the forward).
    entries.append({"name": "grad_output", "shape": [batch, *c5], "kind": "uniform", "low": -1.0, "high": 1.0})
    out = {}
    for name in r64:
        out.update(expect(name, r64[name], r32[name], whole_limit))
    meta = recipe.recipe_metadata(entries, SEED)
    meta.update({"arch": arch, "train": str(train).lower(), "bn_groups": str(groups), "num_batches_tracked": "3"})
    save_file(out, f"{OUT}/{file_name}.safetensors", metadata=meta)
    size = os.path.getsize(f"{OUT}/{file_name}.safetensors")
    worst = max(out[k][0] for k in out if k.startswith("err32."))
    print(f"{file_name}: {size} bytes, {len(r64)} expectations, worst torch float32 relL2 {worst:.2e}")


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    write_names()
    for case in CASES:
        write_case(*case)


if __name__ == "__main__":
    main()
