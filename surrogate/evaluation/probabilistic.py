"""One-step scores of a probabilistic grid surrogate on held-out trajectories, with and
without ProbConserv's update: what Hansen et al. (2023) report.

    MSE                 mean squared error of the mean (physical units)
    conservation error  mean |sum_i w_i u_i - b| of each conserved channel, b the integral of
                        the input state plus the step's boundary inflow (never the target)
    log-likelihood      mean Gaussian log-likelihood of the true values, per value
    predictive std      mean standard deviation of the prediction

Shapes: the store's trajectories (T, C, *space); every consecutive window of the split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from surrogate.datasets.store import GridStore
from surrogate.evaluation.evaluate import boundary_inflow
from surrogate.evaluation.report import HtmlTable
from surrogate.operators.probabilistic_surrogate import ProbabilisticSurrogate


@torch.no_grad()
def one_step_scores(
    model: ProbabilisticSurrogate, store: GridStore, split: str, channels: Sequence[str], max_trajectories: int = 16
) -> dict[str, dict[str, float]]:
    """{"unconstrained": scores, "ProbConserv": scores} (only the first when nothing is conserved)."""
    idx = np.asarray(store.splits[split][:max_trajectories])
    sel = [store.channel_names.index(c) for c in channels]
    truth = torch.from_numpy(np.stack([store.read(int(i), 0, store.n_steps)[:, sel] for i in idx])).double()  # (B, T, C, *space)
    inflow = boundary_inflow(store, idx, channels)  # (B, T, C) or None
    params = torch.from_numpy(store.params[idx])
    mask = None if store.mask is None else torch.from_numpy(store.mask[idx])
    static = torch.from_numpy(np.stack([store.read_static(int(i)) for i in idx])) if store.static_layouts else None
    k = model.n_input
    variants = {"unconstrained": False, "ProbConserv": True} if model.conserve else {"unconstrained": False}
    sums: dict[str, dict[str, float]] = {name: {} for name in variants}
    n_windows = truth.shape[1] - k
    for t in range(k - 1, truth.shape[1] - 1):
        x, y = truth[:, t - k + 1 : t + 1], truth[:, t + 1]
        step_in = None if inflow is None else inflow[:, t + 1] - inflow[:, t]
        for name, constrain in variants.items():
            g = model.gaussian(x.float(), params.float(), mask, static, step_in, constrain)
            var = g.var.clamp_min(1e-30)
            scores = {
                "mse": float((g.mean - y).square().mean()),
                "log_likelihood": float((-0.5 * ((y - g.mean).square() / var + torch.log(2 * math.pi * var))).mean()),
                "predictive_std": float(var.sqrt().mean()),
            }
            if model.conserve:
                w = model.volumes.double() * (1 if mask is None else mask[:, 0].double())
                for c in model.conserve:
                    b = (x[:, -1, c] * w).flatten(1).sum(1) + (0 if step_in is None else step_in[:, c])
                    scores[f"conservation_error_{channels[c]}"] = float(((g.mean[:, c] * w).flatten(1).sum(1) - b).abs().mean())
            for key, value in scores.items():
                sums[name][key] = sums[name].get(key, 0.0) + value / n_windows
    return sums


def scores_table(scores: dict[str, dict[str, Any]]) -> HtmlTable:
    """The report's table of `one_step_scores`."""
    keys = list(next(iter(scores.values())))
    rows = [[name, *(f"{rec[k]:.4g}" for k in keys)] for name, rec in scores.items()]
    return HtmlTable("held-out one-step Gaussian predictions (ProbConserv: conditioned on the conservation law)", ["", *keys], rows)
