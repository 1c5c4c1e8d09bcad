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
