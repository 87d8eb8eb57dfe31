#!/usr/bin/env python3
"""PyTorch fixtures for the contrastive loss kernels (InfoNCELoss, DenseCorrespondence, DenseInfoNCELoss).

Writes Tests/Fixtures/losses/{infonce,dense}.safetensors. Inputs are float32 (as our kernels see them), already in
our layouts; expectations are computed by PyTorch in float64 from those same float32 values, the way the official
DenseCL code computes them (`F.normalize`, `torch.matmul`, `max(dim=2)`, `F.cross_entropy` on
`cat([l_pos, l_neg], 1) / T` with label 0), with gradients from autograd. The float32 run of the same graph is
recorded as `err32.<name>` (its relative L2 distance to float64), to calibrate the Swift tolerances.

Layouts: torch's dense tensors are [N, C, S*S]; ours are channels-last [N*S*S, C] (row n*S*S + i is position i of
sample n). The queue is [D, K] in both.

Needs: pip install torch numpy safetensors
Run from the repository root: scripts/reference/make_loss_fixtures.py
"""
import sys

sys.path.insert(0, "scripts/reference")

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

import recipe

T = 0.2
OUT = "Tests/Fixtures/losses"


def unit_rows(x, dim):
    return F.normalize(x, dim=dim).to(torch.float32)


def infonce(q, k, queue, weight, dtype):
    """MoCo-v2 / DenseCL global loss on float32 inputs evaluated in `dtype`; returns (loss, dq, l_pos, l_neg)."""
    q = q.to(dtype).clone().requires_grad_(True)
    k, queue = k.to(dtype), queue.to(dtype)
    l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
    l_neg = torch.einsum("nc,ck->nk", q, queue)
    logits = torch.cat([l_pos, l_neg], dim=1) / T
    loss = F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))
    (weight * loss).backward()
    return loss.detach(), q.grad, l_pos.detach(), l_neg.detach()


def make_infonce(gen):
    n, d, k, weight = 6, 16, 96, 0.5  # weight: the caller's (1 - lambda)
    q = unit_rows(torch.randn(n, d, generator=gen, dtype=torch.float64), 1)
    # Keys close to their queries, so the positive logit is large and the softmax is far from uniform.
    k_ = unit_rows(q.double() + 0.6 * torch.randn(n, d, generator=gen, dtype=torch.float64), 1)
    queue = unit_rows(torch.randn(d, k, generator=gen, dtype=torch.float64), 0)
    loss64, dq64, pos64, neg64 = infonce(q, k_, queue, weight, torch.float64)
    loss32, dq32, _, _ = infonce(q, k_, queue, weight, torch.float32)
    tensors = {"input.q": q.numpy(), "input.k": k_.numpy(), "input.queue": queue.numpy(),
               "input.temperature": np.array([T], dtype=np.float32), "input.weight": np.array([weight], dtype=np.float32),
               "out.positive_mean": np.array([pos64.mean().item()]), "out.negative_mean": np.array([neg64.mean().item()])}
    tensors.update(recipe.expectation("loss", loss64.reshape(1).numpy(), loss32.reshape(1).numpy()))
    tensors.update(recipe.expectation("dq", dq64.numpy(), dq32.numpy()))
    save_file(tensors, f"{OUT}/infonce.safetensors", metadata={"generator": "make_loss_fixtures.py", "T": str(T)})
    print(f"infonce: loss {loss64.item():.6f}, err32 dq {tensors['err32.dq'][0]:.2e}")


def dense_loss(q_grid, k_grid, match, queue2, weight, dtype):
    """Official dense branch on [N, D, P] grids; returns (loss, dq_grid [N, D, P])."""
    n, d, p = q_grid.shape
    q = q_grid.to(dtype).clone().requires_grad_(True)
    k, queue2 = k_grid.to(dtype), queue2.to(dtype)
    indexed_k = torch.gather(k, 2, match.unsqueeze(1).expand(-1, d, -1))  # [N, D, P]: key at the matched position
    l_pos = (q * indexed_k).sum(1).reshape(-1, 1)  # [N*P, 1], row n*P + i
    qf = q.permute(0, 2, 1).reshape(-1, d)  # [N*P, D]
    l_neg = qf @ queue2
    logits = torch.cat([l_pos, l_neg], dim=1) / T
    loss = F.cross_entropy(logits, torch.zeros(n * p, dtype=torch.long))
    (weight * loss).backward()
    return loss.detach(), q.grad


def make_dense(gen):
    n, s, c, d, k, weight = 2, 3, 32, 16, 128, 0.5  # weight: the caller's lambda
    p = s * s
    for attempt in range(100):
        # Backbone features (C5, after ReLU so non-negative) and projected grids, torch layout [N, C, P].
        qb = unit_rows(torch.rand(n, c, p, generator=gen, dtype=torch.float64), 1)
        kb = unit_rows(torch.rand(n, c, p, generator=gen, dtype=torch.float64), 1)
        sim = torch.matmul(qb.double().permute(0, 2, 1), kb.double())  # [N, P, P] float64
        top2 = sim.topk(2, dim=2).values
        if (top2[..., 0] - top2[..., 1]).min() > 1e-4:  # no near-ties: float32 and float64 argmax must agree
            break
    else:
        raise RuntimeError("could not draw features without near-ties")
    match = sim.max(dim=2)[1]  # [N, P], the official densecl_sim_ind
    q_grid = unit_rows(torch.randn(n, d, p, generator=gen, dtype=torch.float64), 1)
    k_grid = unit_rows(q_grid.double() + 0.8 * torch.randn(n, d, p, generator=gen, dtype=torch.float64), 1)
    queue2 = unit_rows(torch.randn(d, k, generator=gen, dtype=torch.float64), 0)
    loss64, dq64 = dense_loss(q_grid, k_grid, match, queue2, weight, torch.float64)
    loss32, dq32 = dense_loss(q_grid, k_grid, match, queue2, weight, torch.float32)

    def ours(x):  # [N, C, P] -> [N*P, C]
        return x.permute(0, 2, 1).reshape(n * p, -1).contiguous().numpy()

    tensors = {"input.qb": ours(qb), "input.kb": ours(kb), "input.q_grid": ours(q_grid), "input.k_grid": ours(k_grid),
               "input.queue2": queue2.numpy(), "input.temperature": np.array([T], dtype=np.float32),
               "input.weight": np.array([weight], dtype=np.float32),
               "input.shape": np.array([n, p, c, d, k], dtype=np.int64),
               "out.matches": match.reshape(-1).numpy().astype(np.int64)}
    tensors.update(recipe.expectation("loss", loss64.reshape(1).numpy(), loss32.reshape(1).numpy()))
    tensors.update(recipe.expectation("dq_grid", ours(dq64).astype(np.float64), ours(dq32)))
    save_file(tensors, f"{OUT}/dense.safetensors", metadata={"generator": "make_loss_fixtures.py", "T": str(T)})
    print(f"dense: loss {loss64.item():.6f}, matches {match.reshape(-1).tolist()}, err32 dq {tensors['err32.dq_grid'][0]:.2e}")


if __name__ == "__main__":
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(20210604)
    make_infonce(gen)
    make_dense(gen)
