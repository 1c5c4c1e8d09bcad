"""Per-step error metrics of rollouts.

Every metric reduces over channels and space, per sample and step, then averages over
the batch. NMSE follows CFDBench: mean((pred - true)^2) / mean(true^2).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

METRICS = ("rel_l2", "nmse", "rmse")


def per_sample_errors(pred: Tensor, true: Tensor) -> dict[str, Tensor]:
    """Errors of each sample and rollout step. Shapes: pred, true (B, T, C, *space) -> each metric (B, T)."""
    if pred.shape != true.shape:
        raise ValueError(f"per_sample_errors: prediction {tuple(pred.shape)} vs truth {tuple(true.shape)}")
    diff = (pred - true).double().flatten(2)  # (B, T, C * prod(space))
    ref = true.double().flatten(2)
    mse = diff.square().mean(-1)  # (B, T)
    ref_ms = ref.square().mean(-1).clamp_min(torch.finfo(torch.float64).tiny)
    return {"rel_l2": (mse / ref_ms).sqrt(), "nmse": mse / ref_ms, "rmse": mse.sqrt()}


def per_step_errors(pred: Tensor, true: Tensor) -> dict[str, Tensor]:
    """Errors of each rollout step averaged over the batch. Shapes: pred, true (B, T, C, *space) -> each metric (T,)."""
    return {m: v.mean(0) for m, v in per_sample_errors(pred, true).items()}


def over_trajectories(per_trajectory: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-step summaries of {metric: (n_trajectories, T)} (NaN where a trajectory is shorter):
    `metric` the mean, `metric_q25`, `metric_median`, `metric_q75` its quartiles; each (T,)."""
    out = {}
    for m, v in per_trajectory.items():
        out[m] = np.nanmean(v, axis=0)
        for name, q in (("q25", 25), ("median", 50), ("q75", 75)):
            out[f"{m}_{name}"] = np.nanpercentile(v, q, axis=0)
    return out


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
