"""Per-channel normalization statistics of a store, computed out of core with dask."""

from __future__ import annotations

import dask
import numpy as np

from surrogate.datasets.store import GridStore
from surrogate.errors import InputError


def channel_stats(store: GridStore, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of every channel over the trajectories of `split`.

    Reads the store chunk by chunk (dask), so the data may be larger than memory. A linked Well
    folder's training statistics come from its stats.yaml when it names every field.
    Shapes: returns mean (C,), std (C,) float64, in `store.channel_names` order.
    """
    s = store.schema
    ws = store.well_stats
    if split == "train" and ws is not None and all(f in ws["mean"] and f in ws["std"] for f in (*s.scalar_fields, *s.vector_fields)):
        mean = np.concatenate([np.ravel(ws["mean"][f]) for f in (*s.scalar_fields, *s.vector_fields)]).astype(np.float64)
        std = np.concatenate([np.ravel(ws["std"][f]) for f in (*s.scalar_fields, *s.vector_fields)]).astype(np.float64)
        if mean.shape == std.shape == (len(store.channel_names),) and np.isfinite(mean).all() and np.isfinite(std).all():
            return mean, np.where(std > 0, std, 1.0)
    idx = np.sort(store.splits[split])
    if idx.size == 0:
        raise InputError(f"{store.path}: split {split!r} is empty, cannot compute normalization statistics")
    lazy = []
    for name in store.schema.scalar_fields:
        x = store.dask_field(name)[idx].astype(np.float64)  # (b, T, *space)
        lazy.append((x.mean()[None], x.std()[None]))
    for name in store.schema.vector_fields:
        x = store.dask_field(name)[idx].astype(np.float64)  # (b, T, *space, D)
        axes = tuple(range(x.ndim - 1))
        lazy.append((x.mean(axis=axes), x.std(axis=axes)))
    computed = dask.compute(*lazy, scheduler="threads")
    mean = np.concatenate([m for m, _ in computed])
    std = np.concatenate([s for _, s in computed])
    bad = [n for n, m, s in zip(store.channel_names, mean, std) if not (np.isfinite(m) and np.isfinite(s))]
    if bad:
        raise InputError(f"{store.path}: fields {bad} contain NaN/Inf in split {split!r}")
    return mean, np.where(std > 0, std, 1.0)
