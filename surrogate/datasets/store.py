"""The canonical grid store: The Well's HDF5 layout, written atomically, read lazily.

Layout (The Well's specification, plus `splits/` and two parameter attributes):

    @dataset_name @grid_type='cartesian' @n_spatial_dims @n_trajectories
    @simulation_parameters=[names]   @<name> (each parameter's values, as The Well's checker wants)
    @surrogate_format_version
    dimensions/  @spatial_dims=['x','y']   time (T,)   x (X,)   y (Y,)
    boundary_conditions/<dim>_boundary/  @bc_type periodic|wall|open  mask (len,) values (0,)
    scalars/     @field_names   <param> (B,)  @sample_varying=True  @norm_offset @norm_scale
                 <field>_boundary_inflow (B, T) @boundary_inflow_of=<field>  (optional, see below)
    t0_fields/   @field_names   <name> (B, T, *space)   mask (B, *space) @time_varying=False
    t1_fields/   @field_names   <name> (B, T, *space, D)
    t2_fields/   @field_names   <name> (B, T, *space, D, D)
    splits/      train, valid, test: trajectory indices

The reader takes every variation The Well's specification allows (see `well_fields.py`):
fields without a trajectory or time axis, constant along a space axis (`@dim_varying`), rank-2
tensors, parameters constant (shape ()) or varying in time ((B, T) or (T,)), and per-trajectory
time grids (`dimensions/time` (B, T)) that share one step. Channels seen by models are the
time-varying fields: t0 fields in order, then each t1 field's components named
`<field>_<dim>`, then each t2 field's `<field>_<dim><dim>`. Fields constant in time are static
inputs (`static_channels`); a static t0 field called `mask` (1 fluid, 0 solid) is the mask.

Shapes:
    read(traj, start, stop)  (T, C, *space) float32
    read_static(traj)        (S, *space) float32
    params                   (B, P) physical values at the first step; models normalize them as
                             (params - @norm_offset) / @norm_scale
    param_schedule           (B, T, P) every step's values, or None when no parameter varies in time
    mask                     (B, 1, *space) or None
    boundary_inflow          {field: (B, T)} float64: the amount of a conserved field that has
                             entered through the boundaries since the first step (the time
                             integral of the boundary fluxes, from the solver). A time-varying
                             scalar in The Well's sense, marked @boundary_inflow_of=<field>; it is
                             not a model parameter. With the initial state it gives the right-hand
                             side of the conservation law, int u(t) dx = int u(t0) dx + inflow(t),
                             without the solution at t (ProbConserv's b).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from surrogate.datasets.atomic import atomic_path
from surrogate.datasets.well_fields import GROUPS as FIELD_GROUPS
from surrogate.datasets.well_fields import FieldLayout, flag
from surrogate.errors import InputError

FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
BC_TYPES = ("periodic", "wall", "open")
INFLOW_ATTR = "boundary_inflow_of"  # marks a scalar as a field's cumulative boundary inflow (B, T)


@dataclass(frozen=True)
class GridSchema:
    """What a grid store holds, independent of its size in trajectories."""

    dataset_name: str
    time: np.ndarray
    coords: dict[str, np.ndarray]
    scalar_fields: tuple[str, ...] = ()
    vector_fields: tuple[str, ...] = ()
    tensor_fields: tuple[str, ...] = ()
    static_channels: tuple[str, ...] = ()
    param_names: tuple[str, ...] = ()
    param_offset: tuple[float, ...] = ()
    param_scale: tuple[float, ...] = ()
    boundary: dict[str, str] = field(default_factory=dict)
    has_mask: bool = False

    @property
    def spatial_dims(self) -> tuple[str, ...]:
        return tuple(self.coords)

    @property
    def space_shape(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.coords.values())

    @property
    def channel_names(self) -> tuple[str, ...]:
        dims = self.spatial_dims
        vectors = tuple(f"{v}_{d}" for v in self.vector_fields for d in dims)
        return self.scalar_fields + vectors + tuple(f"{t}_{a}{b}" for t in self.tensor_fields for a in dims for b in dims)


def param_values(ds: h5py.Dataset, n: int, n_t: int) -> np.ndarray:
    """A parameter as (B, T) float64, from any of The Well's forms: () constant, (B,) per
    trajectory, (T,) per step, (B, T) both (read from its varying flags, else its shape)."""
    a = np.asarray(ds[()], dtype=np.float64)
    if "sample_varying" in ds.attrs or "time_varying" in ds.attrs:
        sample, time = flag(ds, "sample_varying", a.ndim > 0 and a.shape[0] == n), flag(ds, "time_varying", False)
    else:
        sample, time = (a.ndim == 2) or (a.ndim == 1 and a.shape[0] == n), (a.ndim == 2) or (a.ndim == 1 and a.shape[0] != n)
    expected = ((n,) if sample else ()) + ((n_t,) if time else ())
    if a.shape != expected:
        raise InputError(f"scalars/{ds.name.split('/')[-1]}: shape {a.shape}, expected {expected} for its varying flags")
    if not sample:
        a = a[None]
    if not time:
        a = a[..., None]
    return np.broadcast_to(a, (n, n_t))


def _norm(ds: h5py.Dataset) -> tuple[float, float]:
    """A parameter's (offset, scale): its @norm_offset / @norm_scale (our addition to The Well's
    layout), else its mean and standard deviation over the trajectories (1 when constant)."""
    if "norm_offset" in ds.attrs and "norm_scale" in ds.attrs:
        return float(ds.attrs["norm_offset"]), float(ds.attrs["norm_scale"])
    values = np.asarray(ds[()], dtype=np.float64)
    std = float(values.std()) if values.size else 0.0
    return (float(values.mean()) if values.size else 0.0), (std if std > 0 else 1.0)


def param_attr(values: np.ndarray) -> float | np.ndarray | str:
    """A parameter's root attribute (The Well lists each simulation parameter as one): its value
    when every trajectory shares it, else the values (up to 4096 of them; HDF5 attributes are
    small), else where to find them."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size and np.all(values == values[0]):
        return float(values[0])
    return values if values.size <= 4096 else "per trajectory: see scalars/"


def _flag_attrs(ds: h5py.HLObject, sample: bool, time: bool, n_dims: int | None = None) -> None:
    ds.attrs["sample_varying"] = sample
    ds.attrs["time_varying"] = time
    if n_dims is not None:
        ds.attrs["dim_varying"] = np.ones(n_dims, dtype=bool)


class GridStoreWriter:
    """Write B trajectories into a new store; the file appears under its name only when complete.

    Usage:
        with GridStoreWriter(path, schema, n_trajectories=B) as w:
            w.write(start, {"vorticity": array (b, T, X, Y)}, params (b, P))
            w.set_splits(train=[...], valid=[...], test=[...])
    """

    def __init__(self, path: str | Path, schema: GridSchema, n_trajectories: int) -> None:
        self.path, self.schema, self.n = Path(path), schema, n_trajectories
        self._written = np.zeros(n_trajectories, dtype=bool)
        self._splits: dict[str, np.ndarray] | None = None

    def __enter__(self) -> GridStoreWriter:
        # LIFO unwinding: the HDF5 file is closed before the temporary is renamed (or removed).
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._f = self._stack.enter_context(h5py.File(tmp, "w"))
        try:
            self._layout()
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            try:
                self._finish()
            except BaseException:
                self._stack.__exit__(*sys.exc_info())
                raise
        self._stack.__exit__(*exc)

    def _finish(self) -> None:
        if not self._written.all():
            missing = np.flatnonzero(~self._written)[:10].tolist()
            raise InputError(f"{self.path}: trajectories {missing} were never written")
        for name in self.schema.param_names:
            self._f.attrs[name] = param_attr(self._f["scalars"][name][()])
        splits = self._splits or {"train": np.arange(self.n), "valid": np.arange(0), "test": np.arange(0)}
        g = self._f.create_group("splits")
        for name in SPLITS:
            g.create_dataset(name, data=np.asarray(splits[name], dtype=np.int64))

    def _layout(self) -> None:
        s, f, n = self.schema, self._f, self.n
        nd, t = len(s.coords), len(s.time)
        f.attrs.update(
            dataset_name=s.dataset_name,
            grid_type="cartesian",
            n_spatial_dims=nd,
            n_trajectories=n,
            simulation_parameters=list(s.param_names),
            surrogate_format_version=FORMAT_VERSION,
        )
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = list(s.spatial_dims)
        _flag_attrs(dims.create_dataset("time", data=np.asarray(s.time, np.float32)), False, True)
        for name, c in s.coords.items():
            _flag_attrs(dims.create_dataset(name, data=np.asarray(c, np.float32)), False, False)
        bcs = f.create_group("boundary_conditions")
        for dim, kind in s.boundary.items():
            if kind not in BC_TYPES or dim not in s.coords:
                raise InputError(f"boundary condition {dim}={kind!r}: expected a dim of {s.spatial_dims} and {BC_TYPES}")
            g = bcs.create_group(f"{dim}_boundary")
            g.attrs.update(associated_dims=[dim], associated_fields=[], bc_type=kind)
            _flag_attrs(g, False, False)
            m = np.zeros(len(s.coords[dim]), dtype=bool)
            m[[0, -1]] = True
            g.create_dataset("mask", data=m)
            g.create_dataset("values", data=np.zeros(0, np.float32))
        sc = f.create_group("scalars")
        sc.attrs["field_names"] = list(s.param_names)
        for i, p in enumerate(s.param_names):
            ds = sc.create_dataset(p, shape=(n,), dtype=np.float32)
            _flag_attrs(ds, True, False)
            ds.attrs["norm_offset"] = s.param_offset[i] if s.param_offset else 0.0
            ds.attrs["norm_scale"] = s.param_scale[i] if s.param_scale else 1.0
        space = s.space_shape
        chunk_t = min(t, 16)
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = list(s.scalar_fields) + (["mask"] if s.has_mask else [])
        for name in s.scalar_fields:
            _flag_attrs(t0.create_dataset(name, (n, t, *space), np.float32, chunks=(1, chunk_t, *space)), True, True, nd)
        if s.has_mask:
            _flag_attrs(t0.create_dataset("mask", (n, *space), np.float32, chunks=(1, *space)), True, False, nd)
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = list(s.vector_fields)
        for name in s.vector_fields:
            shape = (n, t, *space, nd)
            _flag_attrs(t1.create_dataset(name, shape, np.float32, chunks=(1, chunk_t, *space, nd)), True, True, nd)
        f.create_group("t2_fields").attrs["field_names"] = []

    def write(
        self,
        start: int,
        fields: dict[str, np.ndarray],
        params: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> None:
        """Write trajectories [start, start + b): fields (b, T, *space[, D]), params (b, P), mask (b, *space)."""
        s = self.schema
        expected = set(s.scalar_fields) | set(s.vector_fields)
        if set(fields) != expected:
            raise InputError(f"{self.path}: write got fields {sorted(fields)}, the schema has {sorted(expected)}")
        b = next(iter(fields.values())).shape[0]
        stop = start + b
        if start < 0 or stop > self.n:
            raise InputError(f"{self.path}: trajectories [{start}, {stop}) outside [0, {self.n})")
        for name, arr in fields.items():
            group = "t0_fields" if name in s.scalar_fields else "t1_fields"
            ds = self._f[group][name]
            if arr.shape != (b, *ds.shape[1:]):
                raise InputError(f"{self.path}: field {name!r} has shape {arr.shape}, expected {(b, *ds.shape[1:])}")
            if not np.isfinite(arr).all():
                raise InputError(f"{self.path}: field {name!r} of trajectories [{start}, {stop}) has NaN/Inf")
            ds[start:stop] = arr
        if s.param_names:
            p = np.asarray(params, dtype=np.float64).reshape(b, -1) if params is not None else None
            if p is None or p.shape != (b, len(s.param_names)):
                got = None if p is None else p.shape
                raise InputError(f"{self.path}: params expected shape {(b, len(s.param_names))}, got {got}")
            for i, name in enumerate(s.param_names):
                self._f["scalars"][name][start:stop] = p[:, i]
        if s.has_mask:
            if mask is None or mask.shape != (b, *s.space_shape):
                got = None if mask is None else mask.shape
                raise InputError(f"{self.path}: mask expected shape {(b, *s.space_shape)}, got {got}")
            self._f["t0_fields"]["mask"][start:stop] = mask
        self._written[start:stop] = True

    def set_splits(self, train: Sequence[int] | np.ndarray, valid: Sequence[int] | np.ndarray, test: Sequence[int] | np.ndarray) -> None:
        """Record which trajectories form each split; they must partition [0, B)."""
        allidx = np.concatenate([np.asarray(x, dtype=np.int64) for x in (train, valid, test)])
        if np.sort(allidx).tolist() != list(range(self.n)):
            raise InputError(f"{self.path}: splits must partition the {self.n} trajectories")
        self._splits = {"train": np.asarray(train), "valid": np.asarray(valid), "test": np.asarray(test)}

    def write_boundary_inflow(self, field: str, inflow: np.ndarray) -> None:
        """Record how much of `field` entered through the boundaries from the first step to each
        step, for every trajectory: inflow (B, T), zero at the first step."""
        if field not in self.schema.scalar_fields:
            raise InputError(f"{self.path}: boundary inflow of {field!r}: not a scalar field of the schema {self.schema.scalar_fields}")
        a = np.asarray(inflow, dtype=np.float64)
        if a.shape != (self.n, len(self.schema.time)) or not np.isfinite(a).all():
            expected = (self.n, len(self.schema.time))
            raise InputError(f"{self.path}: boundary inflow of {field!r}: expected finite values of shape {expected}, got {a.shape}")
        name = f"{field}_boundary_inflow"
        ds = self._f["scalars"].create_dataset(name, data=a)
        _flag_attrs(ds, True, True)
        ds.attrs[INFLOW_ATTR] = field
        self._f["scalars"].attrs["field_names"] = [*self._f["scalars"].attrs["field_names"], name]


class GridStore:
    """Lazy reader of a grid store. Opening it validates the layout (see `validate_store`)."""

    def __init__(self, path: str | Path) -> None:
        from surrogate.datasets.validate import validate_store

        self.path = Path(path)
        problems = validate_store(self.path)
        if problems:
            raise InputError(f"{self.path}: not a valid grid store: " + "; ".join(problems))
        self._f: h5py.File | None = None
        self._handles: list[tuple[FieldLayout, h5py.Dataset]] = []
        self._static_handles: list[tuple[FieldLayout, h5py.Dataset]] = []
        with h5py.File(self.path, "r") as f:
            self._read_metadata(f)

    def _read_metadata(self, f: h5py.File) -> None:
        dims = [str(d) for d in f["dimensions"].attrs["spatial_dims"]]
        scalars = [str(p) for p in f["scalars"].attrs["field_names"]]
        inflows = {name: str(f["scalars"][name].attrs[INFLOW_ATTR]) for name in scalars if INFLOW_ATTR in f["scalars"][name].attrs}
        pnames = tuple(p for p in scalars if p not in inflows)
        self.n_trajectories = n = int(f.attrs["n_trajectories"])
        time = np.asarray(f["dimensions"]["time"][()])
        self.layouts = [
            FieldLayout.of(group, str(name), f[group][str(name)], len(dims))
            for group in FIELD_GROUPS
            if group in f
            for name in f[group].attrs.get("field_names", [])
            if not (group == "t0_fields" and str(name) == "mask")
        ]
        self.state_layouts = [lay for lay in self.layouts if lay.state]
        self.static_layouts = [lay for lay in self.layouts if not lay.state]

        def state(rank: int) -> tuple[str, ...]:
            return tuple(lay.name for lay in self.state_layouts if lay.rank == rank)

        t0 = [str(x) for x in f["t0_fields"].attrs["field_names"]]
        self.schema = GridSchema(
            dataset_name=str(f.attrs["dataset_name"]),
            time=time[0] if time.ndim == 2 else time,  # per-trajectory grids share one step (validated)
            coords={d: f["dimensions"][d][()] for d in dims},
            scalar_fields=state(0),
            vector_fields=state(1),
            tensor_fields=state(2),
            static_channels=tuple(c for lay in self.static_layouts for c in lay.channels(tuple(dims))),
            param_names=pnames,
            param_offset=tuple(_norm(f["scalars"][p])[0] for p in pnames),
            param_scale=tuple(_norm(f["scalars"][p])[1] for p in pnames),
            boundary={str(g.attrs["associated_dims"][0]): str(g.attrs["bc_type"]).lower() for g in f["boundary_conditions"].values()},
            has_mask="mask" in t0,
        )
        n_t = len(self.schema.time)
        schedule = np.stack([param_values(f["scalars"][p], n, n_t) for p in pnames], axis=-1) if pnames else np.zeros((n, n_t, 0))
        self.params = np.ascontiguousarray(schedule[:, 0])  # (B, P)
        unknown = {name: fld for name, fld in inflows.items() if fld not in self.schema.scalar_fields}
        if unknown:
            raise InputError(f"{self.path}: scalars {unknown} are boundary inflows of fields not in the store {self.schema.scalar_fields}")
        self.boundary_inflow = {fld: param_values(f["scalars"][name], n, n_t) for name, fld in inflows.items()}  # {field: (B, T)}
        varies = bool((schedule != schedule[:, :1]).any()) if n_t and n else False
        self.param_schedule = np.ascontiguousarray(schedule) if varies else None  # (B, T, P)
        self.mask = f["t0_fields"]["mask"][()][:, None] if self.schema.has_mask else None  # (B, 1, *space)
        # The mean and std of a Well folder's stats.yaml (see surrogate.datasets.well_folder), used to normalize.
        self.well_stats: dict[str, dict[str, Any]] | None = json.loads(str(f.attrs["well_stats"])) if "well_stats" in f.attrs else None
        self.has_split_group = "splits" in f
        if self.has_split_group:
            self.splits = {name: f["splits"][name][()] for name in SPLITS}
        else:  # a file as The Well ships it (its split is the folder it lies in): all of it is training data
            self.splits = {"train": np.arange(n), "valid": np.arange(0), "test": np.arange(0)}

    def _file(self) -> h5py.File:
        # Opened lazily so that a store pickled into DataLoader workers opens its own handle.
        if self._f is None:
            self._f = h5py.File(self.path, "r")
            # Dataset handles cached once: h5py's path lookup costs as much as a small read.
            self._handles = [(lay, self._f[lay.group][lay.name]) for lay in self.state_layouts]
            self._static_handles = [(lay, self._f[lay.group][lay.name]) for lay in self.static_layouts]
        return self._f

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_f": None, "_handles": [], "_static_handles": []}

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    @property
    def channel_names(self) -> tuple[str, ...]:
        return self.schema.channel_names

    @property
    def n_steps(self) -> int:
        return len(self.schema.time)

    @property
    def dt(self) -> float:
        t = self.schema.time
        return float(t[1] - t[0]) if len(t) > 1 else 0.0

    def require_fields(self, names: Sequence[str]) -> None:
        """Fail with the available channels unless every name in `names` is one."""
        missing = [n for n in names if n not in self.channel_names]
        if missing:
            raise InputError(f"{self.path}: fields {missing} not in the store; it has {list(self.channel_names)}")

    def read(self, traj: int, start: int, stop: int) -> np.ndarray:
        """Steps [start, stop) of one trajectory, (T, C, *space) float32."""
        self._file()
        space = self.schema.space_shape
        parts = [lay.read(ds, traj, start, stop, space) for lay, ds in self._handles]  # (T, C_i, *space)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def read_static(self, traj: int) -> np.ndarray:
        """The static input fields of one trajectory, (S, *space) float32 (S = 0 without any)."""
        self._file()
        space = self.schema.space_shape
        parts = [lay.read(ds, traj, 0, 1, space)[0] for lay, ds in self._static_handles]
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, *space), np.float32)

    def lazy_field(self, layout: FieldLayout) -> Any:
        """One stored field as a dask array over its HDF5 chunks, (B, T, *space, C_i), broadcast
        over the axes it does not store."""
        ds = self._file()[layout.group][layout.name]
        return layout.lazy(ds, self.n_trajectories, self.n_steps, self.schema.space_shape, f"{self.path}:{layout.group}/{layout.name}")

    def to_xarray(self) -> Any:
        """The whole store as a lazy, dask-backed `xarray.Dataset` with named dims and coordinates."""
        import xarray as xr

        s = self.schema
        dims = s.spatial_dims
        coords: dict[str, Any] = {"time": s.time, **s.coords, "trajectory": np.arange(self.n_trajectories)}
        data: dict[str, Any] = {}
        for lay in self.layouts:
            a = self.lazy_field(lay)  # (B, T, *space, C_i)
            if lay.rank == 0:
                data[lay.name] = (("trajectory", "time", *dims), a[..., 0])
            else:
                coords[f"{lay.name}_component"] = [c[len(lay.name) + 1 :] for c in lay.channels(dims)]
                data[lay.name] = (("trajectory", "time", *dims, f"{lay.name}_component"), a)
        for i, p in enumerate(s.param_names):
            data[p] = (("trajectory",), self.params[:, i])
        if self.mask is not None:
            data["mask"] = (("trajectory", *dims), self.mask[:, 0])
        return xr.Dataset(data, coords=coords, attrs={"dataset_name": s.dataset_name, "source": str(self.path)})
