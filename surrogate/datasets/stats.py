"""Per-channel normalization statistics of a store, computed out of core with dask."""

from __future__ import annotations

import dask
import numpy as np

from surrogate.datasets.store import GridStore
from surrogate.datasets.well_fields import FieldLayout
from surrogate.errors import InputError


def _moments(store: GridStore, layouts: list[FieldLayout], split: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per channel of `layouts` over the trajectories of `split` (static fields: one step)."""
    idx = np.sort(store.splits[split])
    lazy = []
    for lay in layouts:
        x = store.lazy_field(lay)[idx].astype(np.float64)  # (b, T, *space, C_i)
        if not lay.time_varying:
            x = x[:, :1]
        axes = tuple(range(x.ndim - 1))
        lazy.append((x.mean(axis=axes), x.std(axis=axes)) if lay.rank else (x.mean()[None], x.std()[None]))
    computed = dask.compute(*lazy, scheduler="threads")
    mean = np.concatenate([m for m, _ in computed]) if computed else np.zeros(0)
    std = np.concatenate([s for _, s in computed]) if computed else np.zeros(0)
    names = [c for lay in layouts for c in lay.channels(store.schema.spatial_dims)]
    bad = [n for n, m, s in zip(names, mean, std) if not (np.isfinite(m) and np.isfinite(s))]
    if bad:
        raise InputError(f"{store.path}: {what} {bad} contain NaN/Inf in split {split!r}")
    return mean, np.where(std > 0, std, 1.0)


def _from_stats_yaml(store: GridStore) -> tuple[np.ndarray, np.ndarray] | None:
    """A linked Well folder's stats.yaml mean and std per channel, when it names every field."""
    ws, names = store.well_stats, [lay.name for lay in store.state_layouts]
    if ws is None or not all(f in ws["mean"] and f in ws["std"] for f in names):
        return None
    mean = np.concatenate([np.ravel(ws["mean"][f]) for f in names]).astype(np.float64)
    std = np.concatenate([np.ravel(ws["std"][f]) for f in names]).astype(np.float64)
    if mean.shape != std.shape or mean.shape != (len(store.channel_names),) or not (np.isfinite(mean).all() and np.isfinite(std).all()):
        return None
    return mean, np.where(std > 0, std, 1.0)


def channel_stats(store: GridStore, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of every channel over the trajectories of `split`.

    Reads the store chunk by chunk (dask), so the data may be larger than memory. A linked Well
    folder's training statistics come from its stats.yaml when it names every field.
    Shapes: returns mean (C,), std (C,) float64, in `store.channel_names` order.
    """
    idx = np.sort(store.splits[split])
    if idx.size == 0:
        raise InputError(f"{store.path}: split {split!r} is empty, cannot compute normalization statistics")
    listed = _from_stats_yaml(store) if split == "train" else None
    return listed if listed is not None else _moments(store, store.state_layouts, split, "fields")


def static_stats(store: GridStore, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of every static input channel over `split`'s trajectories, (S,) each."""
    if len(store.splits[split]) == 0 or not store.static_layouts:
        return np.zeros(0), np.ones(0)
    return _moments(store, store.static_layouts, split, "static fields")
