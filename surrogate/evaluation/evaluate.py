"""Rollouts of steppers against the stored truth of one split, with per-step metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from surrogate.datasets.store import GridStore
from surrogate.errors import InputError
from surrogate.evaluation.metrics import METRICS, over_trajectories, per_sample_errors
from surrogate.evaluation.rollout import rollout
from surrogate.fields import GridState
from surrogate.stepper import AbstractStepper


def initial_state(store: GridStore, trajs: Sequence[int], n_input: int, truth: torch.Tensor, names: Sequence[str]) -> GridState:
    """The state at step n_input - 1 of `trajs`, with the earlier input steps as history.

    Shapes: truth (B, T, C, *space).
    """
    idx = np.asarray(trajs)
    mask = None if store.mask is None else torch.from_numpy(store.mask[idx])
    t = torch.full((len(idx),), float(store.schema.time[n_input - 1]))
    static = torch.from_numpy(np.stack([store.read_static(int(i)) for i in idx])) if store.static_layouts else None
    schedule = None if store.param_schedule is None else torch.from_numpy(store.param_schedule[idx]).double()
    return GridState(
        fields=truth[:, n_input - 1],
        time=t,
        params=torch.from_numpy(store.params[idx]).double() if schedule is None else schedule[:, n_input - 1],
        field_names=tuple(names),
        param_names=store.schema.param_names,
        mask=mask,
        history=truth[:, : n_input - 1] if n_input > 1 else None,
        static=static,
        schedule=schedule,
        step=n_input - 1,
        inflow=boundary_inflow(store, idx, names),
    )


def boundary_inflow(store: GridStore, idx: np.ndarray, names: Sequence[str]) -> torch.Tensor | None:
    """(B, T, C) the store's cumulative boundary inflow of each channel (zero for channels it
    records none for), or None when it records none."""
    if not store.boundary_inflow:
        return None
    zero = np.zeros((len(idx), store.n_steps))
    return torch.from_numpy(np.stack([store.boundary_inflow[n][idx] if n in store.boundary_inflow else zero for n in names], -1)).double()


def truth_and_start(
    store: GridStore, trajs: Sequence[int], n_input: int, n_steps: int, channels: Sequence[str] | None
) -> tuple[torch.Tensor, GridState]:
    """The stored truth of `trajs` over n_input + n_steps steps, (B, T, C, *space), restricted to
    `channels` (all when None), and the rollout's initial state built from it."""
    names = tuple(channels) if channels else store.channel_names
    store.require_fields(names)
    sel = [store.channel_names.index(c) for c in names]
    truth = np.stack([store.read(int(i), 0, n_input + n_steps) for i in trajs])[:, :, sel]  # (B, T, C, *space)
    finite = np.isfinite(truth).reshape(len(trajs), -1).all(1)
    if not finite.all():
        bad = [int(t) for t, ok in zip(trajs, finite) if not ok]
        raise InputError(f"{store.path}: trajectories {bad[:10]} hold NaN/Inf values in {list(names)} (`surrogate info` scans the store)")
    truth_t = torch.from_numpy(truth)
    return truth_t, initial_state(store, trajs, n_input, truth_t, names)


def evaluate_rollouts(
    steppers: Mapping[str, AbstractStepper],
    store: GridStore,
    split: str,
    n_steps: int,
    n_input: int = 1,
    batch_size: int = 16,
    max_trajectories: int | None = None,
    channels: Sequence[str] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Roll every stepper out from the truth's first `n_input` steps; errors per step.

    `channels` selects the store channels the steppers advance (all when None).

    Returns {stepper name: {metric: (n_steps,) array}}: each metric averaged over the split's
    trajectories, and its quartiles over them (`metrics.over_trajectories`).
    """
    trajs = np.asarray(store.splits[split])[:max_trajectories]
    if len(trajs) == 0:
        raise InputError(f"{store.path}: split {split!r} has no trajectories to evaluate on")
    if n_input + n_steps > store.n_steps:
        raise InputError(
            f"{store.path}: a rollout of {n_steps} steps after {n_input} input steps needs "
            f"{n_input + n_steps} stored steps, the store has {store.n_steps}"
        )
    per: dict[str, dict[str, list[np.ndarray]]] = {name: {m: [] for m in METRICS} for name in steppers}
    for start in range(0, len(trajs), batch_size):
        chunk = trajs[start : start + batch_size]
        truth, state0 = truth_and_start(store, chunk, n_input, n_steps, channels)
        for name, stepper in steppers.items():
            pred = rollout(stepper, state0, n_steps).fields[:, 1:]
            for m, v in per_sample_errors(pred, truth[:, n_input:]).items():
                per[name][m].append(v.numpy())
    return {name: over_trajectories({m: np.concatenate(v) for m, v in d.items()}) for name, d in per.items()}


def rollout_trajectories(
    steppers: Mapping[str, AbstractStepper],
    store: GridStore,
    trajs: Sequence[int],
    n_steps: int,
    n_input: int = 1,
    channels: Sequence[str] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Every stepper's rollout of some stored trajectories, for plots and exports.

    Returns ({name: prediction (B, n_steps, C, *space)}, truth (B, n_steps, C, *space), times (n_steps,)).
    """
    truth, state0 = truth_and_start(store, trajs, n_input, n_steps, channels)
    preds = {name: rollout(s, state0, n_steps).fields[:, 1:].numpy() for name, s in steppers.items()}
    times = store.schema.time[n_input : n_input + n_steps]
    return preds, truth[:, n_input:].numpy(), np.asarray(times)
