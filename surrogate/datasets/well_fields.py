"""How one field of a Well-layout file maps to model channels, in every form The Well's
specification allows.

A field in `t0_fields/` (scalar), `t1_fields/` (vector, D components) or `t2_fields/` (rank-2
tensor, D x D components) is stored with these axes, in order:

    [B if @sample_varying] [T if @time_varying] *space [D if rank >= 1] [D if rank 2]

where a spatial axis along which the field is constant (`@dim_varying` false for it) has
length 1. Missing flags mean "varies". A field that varies in time is state (the model
predicts it); one constant in time is a static input (the model reads it, never predicts
it), except `t0_fields/mask`, our fluid/solid mask. Channels are named `<f>` (rank 0),
`<f>_<x>` (rank 1) and `<f>_<x><y>` (rank 2) after the spatial dimension names.

Parameters in `scalars/` are stored as [B if @sample_varying] [T if @time_varying]; one that
varies in time conditions each step with its value at that step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

GROUPS = ("t0_fields", "t1_fields", "t2_fields")


def flag(node: h5py.HLObject, name: str, default: bool = True) -> bool:
    """A boolean attribute (The Well's varying flags); missing means `default`."""
    value = node.attrs.get(name, default)
    try:
        return bool(np.asarray(value).reshape(-1)[0]) if np.asarray(value).size else default
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class FieldLayout:
    """One stored field: where it is, its rank and which axes it keeps."""

    group: str
    name: str
    rank: int
    sample_varying: bool
    time_varying: bool
    dim_varying: tuple[bool, ...]

    @classmethod
    def of(cls, group: str, name: str, ds: h5py.Dataset, n_dims: int) -> FieldLayout:
        dims = ds.attrs.get("dim_varying")
        dim_varying = tuple(bool(x) for x in np.ravel(dims)) if dims is not None and np.size(dims) == n_dims else (True,) * n_dims
        static_mask = group == "t0_fields" and name == "mask"  # ours: (B, *space), constant in time
        return cls(group, name, GROUPS.index(group), flag(ds, "sample_varying"), flag(ds, "time_varying", not static_mask), dim_varying)

    @property
    def state(self) -> bool:
        """Predicted by the model (varies in time); otherwise a static input."""
        return self.time_varying

    def channels(self, dims: tuple[str, ...]) -> list[str]:
        if self.rank == 0:
            return [self.name]
        if self.rank == 1:
            return [f"{self.name}_{d}" for d in dims]
        return [f"{self.name}_{a}{b}" for a in dims for b in dims]

    def shape(self, n: int, n_t: int, space: tuple[int, ...]) -> tuple[int, ...]:
        """The stored shape this layout expects."""
        lead = ((n,) if self.sample_varying else ()) + ((n_t,) if self.time_varying else ())
        kept = tuple(s if v else 1 for s, v in zip(space, self.dim_varying))
        return (*lead, *kept, *(len(space),) * self.rank)

    def read(self, ds: h5py.Dataset, traj: int, start: int, stop: int, space: tuple[int, ...]) -> np.ndarray:
        """Steps [start, stop) of trajectory `traj` as (T, C_i, *space) float32, broadcast over
        the axes the field does not store (a static field: the same at every step)."""
        index: tuple[Any, ...] = ((traj,) if self.sample_varying else ()) + ((slice(start, stop),) if self.time_varying else ())
        a = np.asarray(ds[index] if index else ds[()], dtype=np.float32)
        if not self.time_varying:
            a = a[None]
        a = np.broadcast_to(a, (stop - start, *space, *(len(space),) * self.rank)).reshape(stop - start, *space, -1)
        return np.moveaxis(a, -1, 1)

    def lazy(self, ds: h5py.Dataset, n: int, n_t: int, space: tuple[int, ...], name: str) -> Any:
        """The whole field as a dask array (B, T, *space, C_i), broadcast like `read`."""
        import dask.array as da

        chunks = ds.chunks or ((1, *ds.shape[1:]) if self.sample_varying and ds.ndim else ds.shape)
        a = da.from_array(ds, chunks=chunks, name=name, lock=True)
        if not self.sample_varying:
            a = a[None]
        if not self.time_varying:
            a = a[:, None]
        a = da.broadcast_to(a, (n, n_t, *space, *(len(space),) * self.rank))
        return a.reshape(n, n_t, *space, -1)
