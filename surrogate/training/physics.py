"""Physics-informed training: the loss is the PDE residual of the prediction, no data.

This is how Chalapathi et al. train all three of their variants (soft constraint, global
hard constraint, mixture of hard-constrained experts); reference solutions are used only
to score the trained models. A step in which an expert's fit did not converge (its implicit
gradient would be wrong) is skipped, counted and logged, never taken.
"""

from __future__ import annotations

import logging
import time

import torch
from torch import Tensor, nn

from surrogate.operators.constraints.moe_hard import ExpertsNotConverged
from surrogate.operators.constraints.spacetime_pde import SpacetimePDE

log = logging.getLogger(__name__)


def fit_physics(
    model: nn.Module,
    pde: SpacetimePDE,
    u0: Tensor,
    epochs: int,
    batch: int,
    lr: float = 1e-3,
    seed: int = 0,
    form: str = "collocation",
) -> dict[str, list[float]]:
    """Adam with a cosine schedule on `pde.loss(model(u0, params), u0, form)`, shuffled mini-batches.

    `model(u0 (B, *space), params (B, 0))` returns u (B, T, *space). Returns per-epoch
    losses (over the steps taken), wall seconds and skipped steps.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n_batches = -(-len(u0) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * n_batches)
    no_params = u0.new_zeros(batch, 0)
    history: dict[str, list[float]] = {"loss": [], "seconds": [], "skipped": []}
    model.train()
    for epoch in range(epochs):
        t0, total, seen, skipped = time.perf_counter(), 0.0, 0, 0
        for idx in torch.randperm(len(u0), generator=gen).split(batch):
            try:
                loss = pde.loss(model(u0[idx], no_params[: len(idx)]), u0[idx], form)
            except ExpertsNotConverged as e:
                skipped += 1
                if skipped == 1:
                    log.warning("epoch %d: step skipped: %s", epoch, e)
                sched.step()
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, seen = total + float(loss.detach()) * len(idx), seen + len(idx)
        history["loss"].append(total / max(seen, 1))
        history["seconds"].append(time.perf_counter() - t0)
        history["skipped"].append(skipped)
    return history
