#!/usr/bin/env python3
"""The DenseCL (or MoCo-v2) training step in PyTorch on CPU, timed like `densecl bench step`, for side-by-side
comparison on the same machine (scripts/bench/compare.sh runs both in alternation).

The step is the official one at world size 1 (densecl-spec.md section 2): query forward, EMA of the key encoder's
parameters, key forward, global and dense InfoNCE against 65536-key queues, enqueue, backward, SGD with momentum and
weight decay. Inputs are random in-memory tensors (no data loading). Channels-last is PyTorch's fastest CPU layout
and the default here (--nchw for the other).

Prints a table, or with --json one object with at least img_per_s, step_s, gflops, peak_rss_mb.

Needs: pip install torch torchvision
Example: scripts/bench/torch_step.py --arch resnet18 --image-size 96 --batch 32 --mode densecl --threads 2 --steps 10
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class Neck(nn.Module):
    """DenseCL neck: global MLP on the pooled C5, dense 1x1-conv head on the C5 grid."""

    def __init__(self, channels, hidden, dim, dense):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))
        self.dense = dense
        if dense:
            self.mlp2 = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, dim, 1))

    def forward(self, x):
        q = self.mlp(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        if not self.dense:
            return q, None, None
        grid = self.mlp2(x)
        pooled = F.adaptive_avg_pool2d(grid, 1).flatten(1)
        return q, grid.flatten(2), pooled


def encoder(arch, hidden, dim, dense, channels_last):
    backbone = getattr(torchvision.models, arch)()
    channels = backbone.fc.in_features
    model = nn.Sequential(nn.Sequential(*list(backbone.children())[:-2]), Neck(channels, hidden or channels, dim, dense))
    return model.to(memory_format=torch.channels_last) if channels_last else model


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--mode", choices=["densecl", "mocov2"], default="densecl")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--queue", type=int, default=65536)
    p.add_argument("--feat-dim", type=int, default=128)
    p.add_argument("--hid-dim", type=int, default=0, help="0 = the C5 width (2048 for ResNet-50, 512 for ResNet-18)")
    p.add_argument("--nchw", action="store_true", help="NCHW instead of channels-last")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dense = a.mode == "densecl"
    lam, t, m = (0.5 if dense else 0.0), 0.2, 0.999
    cl = not a.nchw
    fmt = torch.channels_last if cl else torch.contiguous_format
    enc_q = encoder(a.arch, a.hid_dim, a.feat_dim, dense, cl)
    enc_k = encoder(a.arch, a.hid_dim, a.feat_dim, dense, cl)
    for pq, pk in zip(enc_q.parameters(), enc_k.parameters()):
        pk.data.copy_(pq.data)
        pk.requires_grad = False
    queue = F.normalize(torch.randn(a.feat_dim, a.queue), dim=0)
    queue2 = F.normalize(torch.randn(a.feat_dim, a.queue), dim=0)
    ptr = 0
    opt = torch.optim.SGD(enc_q.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    im_q = torch.randn(a.batch, 3, a.image_size, a.image_size).contiguous(memory_format=fmt)
    im_k = torch.randn(a.batch, 3, a.image_size, a.image_size).contiguous(memory_format=fmt)
    params_q = [p for p in enc_q.parameters()]
    params_k = [p for p in enc_k.parameters()]

    def step(phases):
        nonlocal ptr
        c0 = time.process_time()
        t0 = time.perf_counter()
        feat_q = enc_q[0](im_q)
        q, q_grid, _ = enc_q[1](feat_q)
        q = F.normalize(q, dim=1)
        t1 = time.perf_counter()
        with torch.no_grad():
            torch._foreach_mul_(params_k, m)
            torch._foreach_add_(params_k, params_q, alpha=1 - m)
        t2 = time.perf_counter()
        with torch.no_grad():
            feat_k = enc_k[0](im_k)
            k, k_grid, k2 = enc_k[1](feat_k)
            k = F.normalize(k, dim=1)
        t3 = time.perf_counter()
        l_pos = (q * k).sum(1, keepdim=True)
        l_neg = q @ queue.clone().detach()  # the official code snapshots the queue like this
        logits = torch.cat([l_pos, l_neg], 1) / t
        labels = torch.zeros(a.batch, dtype=torch.long)
        loss = (1 - lam) * F.cross_entropy(logits, labels)
        if dense:
            q_grid = F.normalize(q_grid, dim=1)
            with torch.no_grad():
                k_grid = F.normalize(k_grid, dim=1)
                k2 = F.normalize(k2, dim=1)
                qb = F.normalize(feat_q.detach().flatten(2), dim=1)
                kb = F.normalize(feat_k.flatten(2), dim=1)
                match = torch.bmm(qb.transpose(1, 2), kb).argmax(dim=2)
                k_pos = torch.gather(k_grid, 2, match.unsqueeze(1).expand(-1, k_grid.size(1), -1))
            l_pos_d = (q_grid * k_pos).sum(1).reshape(-1, 1)
            qg = q_grid.permute(0, 2, 1).reshape(-1, a.feat_dim)
            l_neg_d = qg @ queue2.clone().detach()
            logits_d = torch.cat([l_pos_d, l_neg_d], 1) / t
            loss = loss + lam * F.cross_entropy(logits_d, torch.zeros(logits_d.size(0), dtype=torch.long))
        t4 = time.perf_counter()
        with torch.no_grad():
            queue[:, ptr:ptr + a.batch] = k.T
            if dense:
                queue2[:, ptr:ptr + a.batch] = k2.T
            ptr = (ptr + a.batch) % a.queue
        t5 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        t6 = time.perf_counter()
        opt.step()
        t7 = time.perf_counter()
        for name, dt in zip(["query_forward", "ema", "key_forward", "losses", "enqueue", "backward", "optimizer"],
                            [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6]):
            phases.setdefault(name, []).append(dt)
        phases.setdefault("cpu", []).append(time.process_time() - c0)
        return t7 - t0

    flops = 0
    try:
        from torch.utils.flop_counter import FlopCounterMode
        counter = FlopCounterMode(display=False)
        with counter:
            step({})
        flops = counter.get_total_flops()
    except Exception:  # older torch: no FLOP counter
        pass
    for _ in range(a.warmup):
        step({})
    phases, times = {}, []
    for _ in range(a.steps):
        times.append(step(phases))
    step_s = statistics.median(times)
    result = {
        "impl": "pytorch",
        "torch": torch.__version__,
        "arch": a.arch, "image_size": a.image_size, "batch": a.batch, "mode": a.mode, "threads": a.threads,
        "layout": "channels_last" if cl else "nchw",
        "img_per_s": a.batch / step_s,
        "step_s": step_s,
        "cpu_s": statistics.median(phases.pop("cpu")),
        "gflops": flops / step_s / 1e9,
        "step_gflop": flops / 1e9,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "phases_s": {k: statistics.median(v) for k, v in phases.items()},
    }
    if a.json:
        print(json.dumps(result))
        return
    print(f"PyTorch {torch.__version__} {a.arch} {a.image_size}px batch {a.batch} {a.mode} threads {a.threads} "
          f"({result['layout']})")
    print(f"  {result['img_per_s']:.1f} img/s, step {step_s * 1e3:.0f} ms (CPU {result['cpu_s'] * 1e3:.0f} ms), {result['gflops']:.1f} GFLOP/s "
          f"({result['step_gflop']:.1f} GFLOP/step), peak RSS {result['peak_rss_mb']:.0f} MB")
    for k, v in result["phases_s"].items():
        print(f"  {k:14s} {v * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
