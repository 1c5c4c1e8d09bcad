"""Physics-informed training: the loss is the PDE residual of the prediction, no data.

This is how Chalapathi et al. train all three of their variants (soft constraint, global
hard constraint, mixture of hard-constrained experts); reference solutions are used only
to score the trained models.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn

from surrogate.operators.constraints.spacetime_pde import SpacetimePDE


def fit_physics(
    model: nn.Module, pde: SpacetimePDE, u0: Tensor, epochs: int, batch: int, lr: float = 1e-3, seed: int = 0
) -> dict[str, list[float]]:
    """Adam with a cosine schedule on `pde.loss(model(u0, params), u0)`, shuffled mini-batches.

    `model(u0 (B, *space), params (B, 0))` returns u (B, T, *space). Returns per-epoch
    losses and wall seconds.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n_batches = -(-len(u0) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * n_batches)
    no_params = u0.new_zeros(batch, 0)
    history: dict[str, list[float]] = {"loss": [], "seconds": []}
    model.train()
    for _ in range(epochs):
        t0, total = time.perf_counter(), 0.0
        for idx in torch.randperm(len(u0), generator=gen).split(batch):
            loss = pde.loss(model(u0[idx], no_params[: len(idx)]), u0[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        history["loss"].append(total / len(u0))
        history["seconds"].append(time.perf_counter() - t0)
    return history
