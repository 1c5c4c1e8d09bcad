"""Rollouts and stores as `xarray.Dataset`s with named dims, coordinates and attributes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from surrogate.datasets.atomic import atomic_path
from surrogate.errors import InputError


def rollout_dataset(
    pred: np.ndarray,
    truth: np.ndarray,
    times: np.ndarray,
    names: Sequence[str],
    coords: Mapping[str, np.ndarray],
    trajectories: Sequence[int],
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Prediction and truth of rollouts as variables `<name>_pred`, `<name>_true`.

    Shapes: pred, truth (B, T, C, *space); times (B, T) or (T,). Dims: trajectory, time, *space.
    """
    if pred.shape != truth.shape or pred.shape[2] != len(names):
        raise InputError(f"rollout dataset: prediction {pred.shape}, truth {truth.shape}, channels {list(names)}")
    dims = ("trajectory", "time", *coords)
    if tuple(pred.shape[3:]) != tuple(len(c) for c in coords.values()):
        raise InputError(f"rollout dataset: fields {pred.shape[3:]} do not match the grid {[len(c) for c in coords.values()]}")
    t = np.asarray(times)
    t = t[0] if t.ndim == 2 else t
    data = {}
    for c, name in enumerate(names):
        data[f"{name}_pred"] = (dims, pred[:, :, c])
        data[f"{name}_true"] = (dims, truth[:, :, c])
    return xr.Dataset(data, coords={"trajectory": list(trajectories), "time": t, **coords}, attrs=dict(attrs or {}))


def write_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a dataset to netCDF-4 (h5netcdf), atomically."""
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    return Path(path)


def open_dataset(path: str | Path) -> xr.Dataset:
    """Any store (.h5, lazily through the store reader) or netCDF file (.nc) as a dask-backed Dataset."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix == ".nc":
        return xr.open_dataset(path, engine="h5netcdf", chunks={})
    from surrogate.datasets.store import GridStore

    return GridStore(path).to_xarray()
