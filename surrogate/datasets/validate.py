"""Validator and schema summary of every store kind written here (`surrogate info FILE`): grid
stores (The Well's layout), mesh stores and steady point-cloud stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from surrogate.datasets.store import BC_TYPES, SPLITS, param_values
from surrogate.datasets.well_fields import GROUPS as FIELD_GROUPS
from surrogate.datasets.well_fields import FieldLayout
from surrogate.errors import InputError

ROOT_ATTRS = ("dataset_name", "grid_type", "n_spatial_dims", "n_trajectories", "simulation_parameters")
GROUPS = ("dimensions", "boundary_conditions", "scalars", "t0_fields", "t1_fields")  # `splits/` is ours and optional


def validate_store(path: str | Path, scan_values: bool = False) -> list[str]:
    """Everything wrong with the store at `path`, as readable sentences; empty when it is valid.

    `scan_values` also reads every field (chunk by chunk, with dask) to find NaN/Inf.
    """
    path = Path(path)
    if not path.is_file():
        return [f"no such file {path}"]
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        return [f"not a readable HDF5 file (truncated or another format): {e}"]
    with f:
        kind = store_kind(f)
        if kind != "grid":
            return _check_other(path, kind, scan_values)
        problems = _check_layout(f)
        if not problems and scan_values:
            problems += _check_values(path, f)
    return problems


def store_kind(f: h5py.File) -> str:
    """'mesh', 'steady' or 'grid' (everything else is read as a grid store)."""
    from surrogate.datasets.steady_store import LAYOUT

    def text(name: str) -> str:  # an attribute as text; anything but a string (an array, a number) reads as ""
        value = f.attrs.get(name)
        return value.decode() if isinstance(value, bytes) else value if isinstance(value, str) else ""

    if text("grid_type") == "unstructured":
        return "mesh"
    if text("layout") == LAYOUT:
        return "steady"
    return "grid"


def _check_other(path: Path, kind: str, scan_values: bool) -> list[str]:
    """A mesh or steady store: whatever its reader refuses, and NaN/Inf in its fields."""
    from surrogate.datasets.mesh_store import MeshStore
    from surrogate.datasets.steady_store import SteadyStore

    try:
        if kind == "mesh":
            store = MeshStore(path)
            arrays = [store.read(b) for b in range(store.n_trajectories)] if scan_values else []
        else:
            steady = SteadyStore(path)
            arrays = [steady.sample(k).fields for k in range(len(steady))] if scan_values else []
    except InputError as e:
        return [str(e)]
    bad = [i for i, a in enumerate(arrays) if not np.isfinite(a).all()]
    what = "trajectories" if kind == "mesh" else "samples"
    return [f"{kind} store: NaN/Inf values in {what} {bad[:10]}"] if bad else []


def _check_layout(f: h5py.File) -> list[str]:
    missing = [f"root attribute @{a}" for a in ROOT_ATTRS if a not in f.attrs]
    missing += [f"group {g}/" for g in GROUPS if g not in f]
    if missing:
        return ["missing " + ", ".join(missing)]
    p: list[str] = []
    counts = {a: _count(f.attrs[a]) for a in ("n_trajectories", "n_spatial_dims")}
    bad = [f"@{a} {f.attrs[a]!r}: expected a non-negative integer" for a, v in counts.items() if v is None]
    not_groups = [f"{g}/: expected a group, found a {type(f[g]).__name__}" for g in GROUPS if not isinstance(f[g], h5py.Group)]
    if bad or not_groups:
        return bad + not_groups
    n = int(counts["n_trajectories"] or 0)
    dims = f["dimensions"]
    names = [str(d) for d in dims.attrs.get("spatial_dims", [])]
    if len(names) != counts["n_spatial_dims"]:
        p.append(f"dimensions/@spatial_dims {names} does not match @n_spatial_dims={counts['n_spatial_dims']}")
    for d in ["time", *names]:
        ds = dims.get(d)
        ndim_ok = isinstance(ds, h5py.Dataset) and (ds.ndim == 1 or (d == "time" and ds.ndim == 2 and ds.shape[0] == n))
        if not ndim_ok or ds.dtype.kind not in "fiu":
            shape = "(T,) or, per trajectory, (B, T)" if d == "time" else "1-D"
            p.append(f"dimensions/{d}: expected a {shape} numeric dataset, got {_what(ds)}")
        elif ds.shape[-1] > 1 and not np.all(np.diff(ds[()], axis=-1) > 0):
            p.append(f"dimensions/{d}: {'times' if d == 'time' else 'coordinates'} are not increasing")
    if p:
        return p
    time = dims["time"][()]
    n_t = time.shape[-1]
    if time.ndim == 2 and n_t > 1:  # per-trajectory time grids: one step for all (a surrogate advances by one dt)
        steps = np.diff(time, axis=1)
        other = np.flatnonzero(~np.isclose(steps, steps[:1], rtol=1e-5, atol=0).all(axis=1))
        if other.size:
            p.append(
                f"dimensions/time: trajectories {other[:10].tolist()} step by another dt than trajectory 0 "
                f"({float(steps[0, 0]):g}); a surrogate advances by one dt: put them in a store of their own"
            )
    space = tuple(len(dims[d]) for d in names)
    for g in f["boundary_conditions"].values():
        if not isinstance(g, h5py.Group) or str(g.attrs.get("bc_type", "")).lower() not in BC_TYPES:
            p.append(f"boundary_conditions/{g.name}: @bc_type {g.attrs.get('bc_type')!r} not one of {BC_TYPES}")
    params = [str(x) for x in f["scalars"].attrs.get("field_names", [])]
    for name in params:
        ds = f["scalars"].get(name)
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu":
            p.append(f"scalars/{name}: expected a numeric dataset of shape ({n},), (), ({n_t},) or ({n}, {n_t}), got {_what(ds)}")
            continue
        try:
            values = param_values(ds, n, n_t)
        except InputError as e:
            p.append(str(e))
            continue
        nonfinite = np.flatnonzero(~np.isfinite(values).all(axis=1))
        if nonfinite.size:
            p.append(f"scalars/{name}: NaN/Inf values for trajectories {nonfinite[:10].tolist()}")
        for a in ("norm_offset", "norm_scale"):  # optional (our addition); when present, numbers
            if a in ds.attrs and _number(ds.attrs[a]) is None:
                p.append(f"scalars/{name}: @{a} {ds.attrs.get(a)!r}: expected a finite number")
        if _number(ds.attrs.get("norm_scale")) == 0.0:
            p.append(f"scalars/{name}: @norm_scale is 0")
    n_state = 0
    for group in FIELD_GROUPS:
        if group not in f:
            continue
        if not isinstance(f[group], h5py.Group):
            p.append(f"{group}/: expected a group, found a {type(f[group]).__name__}")
            continue
        for name in [str(x) for x in f[group].attrs.get("field_names", [])]:
            ds = f[group].get(name)
            if ds is None:
                p.append(f"{group}/{name}: listed in @field_names but missing")
                continue
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind != "f":
                p.append(f"{group}/{name}: expected a floating-point dataset, got {_what(ds)}")
                continue
            layout = FieldLayout.of(group, name, ds, len(space))
            want = layout.shape(n, n_t, space)
            if ds.shape != want:
                flags = (
                    f"@sample_varying {layout.sample_varying}, @time_varying {layout.time_varying}, @dim_varying {list(layout.dim_varying)}"
                )
                p.append(f"{group}/{name}: shape {ds.shape}, expected {want} for its flags ({flags})")
            n_state += layout.state and not (group == "t0_fields" and name == "mask")
    if n_state == 0:
        p.append("no fields that vary in time: t0_fields, t1_fields and t2_fields list nothing to predict")
    if "splits" not in f:
        return p
    if not isinstance(f["splits"], h5py.Group):
        return [*p, f"splits/: expected a group, found a {type(f['splits']).__name__}"]
    seen: list[int] = []
    for s in SPLITS:
        if s not in f["splits"]:
            p.append(f"splits/{s}: missing")
            continue
        ds = f["splits"][s]
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or ds.dtype.kind not in "iu":
            p.append(f"splits/{s}: expected a 1-D array of trajectory indices, got {_what(ds)}")
            continue
        idx = ds[()]
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            p.append(f"splits/{s}: indices outside [0, {n})")
        seen += idx.tolist()
    partition = len(seen) == n and sorted(seen) == list(range(n))  # the length first: never a list of a bogus @n_trajectories
    if not partition and not any(x.startswith("splits/") for x in p):
        p.append(f"splits: train/valid/test do not partition the {n} trajectories")
    return p


def _count(value: object) -> int | None:
    """An attribute that must be a count: a non-negative integer (numpy or Python), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        return None
    return int(value)


def _number(value: object) -> float | None:
    """A finite real number (a numpy scalar or 0-d/1-element array included), else None."""
    try:
        x = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return float(x.reshape(-1)[0]) if x.size == 1 and np.isfinite(x).all() else None


def _what(node: object) -> str:
    """A short description of an HDF5 node for a message."""
    if isinstance(node, h5py.Dataset):
        return f"a {node.dtype} dataset of shape {node.shape}"
    return "nothing" if node is None else f"a {type(node).__name__}"


def _check_values(path: Path, f: h5py.File) -> list[str]:
    import dask.array as da

    p = []
    for group in [g for g in FIELD_GROUPS if g in f]:
        for name in [str(x) for x in f[group].attrs["field_names"]]:
            ds = f[group][name]
            bad = int(da.from_array(ds, chunks=ds.chunks or "auto").map_blocks(lambda b: ~np.isfinite(b)).sum().compute())
            if bad:
                p.append(f"{group}/{name}: {bad} NaN/Inf values")
    return p


def describe(path: str | Path) -> dict[str, Any]:
    """The schema of a valid store as a plain dict (for `surrogate info`)."""
    from surrogate.datasets.mesh_graph import NODE_TYPES
    from surrogate.datasets.mesh_store import MeshStore
    from surrogate.datasets.steady_store import SteadyStore
    from surrogate.datasets.store import GridStore

    with h5py.File(path, "r") as f:
        kind = store_kind(f)
    if kind == "mesh":
        mesh = MeshStore(path)
        return {
            "file": str(path),
            "kind": "mesh store (unstructured)",
            "trajectories": mesh.n_trajectories,
            "time steps": mesh.n_steps,
            "dt": f"{mesh.dt:.6g}",
            "nodes": f"{len(mesh.points)} in {mesh.points.shape[1]}D",
            "cells": ", ".join(f"{len(c)} {t}" for t, c in mesh.cells.items()),
            "node types": ", ".join(f"{name} {int((mesh.node_type == k).sum())}" for k, name in enumerate(NODE_TYPES)),
            "channels": ", ".join(mesh.channel_names),
            "conversion notes": "; ".join(mesh.notes) or "-",
            "ParaView": str(Path(path).with_suffix(".xdmf")),
        }
    if kind == "steady":
        steady = SteadyStore(path)
        first = steady.sample(0)
        return {
            "file": str(path),
            "kind": "steady point-cloud store",
            "samples": len(steady),
            "points (first sample)": f"{len(first.points)} in {steady.n_dims}D",
            "fields": ", ".join(steady.field_names),
            "parameters": ", ".join(steady.param_names) or "-",
            "obstacle boundaries (first sample)": len(first.rings),
            "ParaView": str(Path(path).with_suffix(".xdmf")),
        }
    store = GridStore(path)
    s = store.schema
    varying = store.param_schedule is not None
    return {
        "file": str(path),
        "kind": "grid store (The Well's layout)",
        "dataset_name": s.dataset_name,
        "trajectories": store.n_trajectories,
        "time steps": store.n_steps,
        "dt": store.dt,
        "grid": " x ".join(f"{d}[{len(c)}]" for d, c in s.coords.items()),
        "channels": ", ".join(s.channel_names),
        "static inputs": ", ".join(s.static_channels) or "-",
        "parameters": (", ".join(s.param_names) or "-") + (" (vary in time: each step's values condition it)" if varying else ""),
        "boundaries": ", ".join(f"{d}: {k}" for d, k in s.boundary.items()) or "-",
        "mask": "yes" if s.has_mask else "no",
        "splits": ", ".join(f"{k} {len(v)}" for k, v in store.splits.items())
        + ("" if store.has_split_group else " (no splits/ group: all training data)"),
    }
