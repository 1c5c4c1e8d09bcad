"""Per-step error metrics of rollouts.

Every metric reduces over channels and space, per sample and step, then averages over
the batch. NMSE follows CFDBench: mean((pred - true)^2) / mean(true^2).
"""

from __future__ import annotations

import torch
from torch import Tensor

METRICS = ("rel_l2", "nmse", "rmse")


def per_step_errors(pred: Tensor, true: Tensor) -> dict[str, Tensor]:
    """Errors of each rollout step. Shapes: pred, true (B, T, C, *space) -> each metric (T,)."""
    if pred.shape != true.shape:
        raise ValueError(f"per_step_errors: prediction {tuple(pred.shape)} vs truth {tuple(true.shape)}")
    diff = (pred - true).double().flatten(2)  # (B, T, C * prod(space))
    ref = true.double().flatten(2)
    mse = diff.square().mean(-1)  # (B, T)
    ref_ms = ref.square().mean(-1).clamp_min(torch.finfo(torch.float64).tiny)
    return {
        "rel_l2": (mse / ref_ms).sqrt().mean(0),
        "nmse": (mse / ref_ms).mean(0),
        "rmse": mse.sqrt().mean(0),
    }


def mesh_rollout_metrics(pred: Tensor, true: Tensor, horizons: tuple[int, ...] = (1, 10, 50)) -> dict[str, float]:
    """The mesh-surrogate literature's rollout errors, over steps 1..T-1 (index 0 is the start).

    `rmse_1step`: RMSE of the first predicted step; `all_rollout_rmse`: RMSE over every step,
    node and component (Garnier et al. 2025); `mse_<k>`: mean squared error over the first k
    steps (MeshGraphNet's mse at 1/10/50 steps), for the horizons the rollout reaches.
    Shapes: pred, true (B, T, C, N).
    """
    if pred.shape != true.shape or pred.shape[1] < 2:
        raise ValueError(f"mesh_rollout_metrics: prediction {tuple(pred.shape)} vs truth {tuple(true.shape)}, need T >= 2")
    sq = (pred[:, 1:] - true[:, 1:]).double().square().mean(dim=(0, 2, 3))  # (T - 1,) per step
    out = {"rmse_1step": float(sq[0].sqrt()), "all_rollout_rmse": float(sq.mean().sqrt()), "steps": float(len(sq))}
    for k in horizons:
        if k <= len(sq):
            out[f"mse_{k}"] = float(sq[:k].mean())
    return out
