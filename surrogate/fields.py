"""In-memory data types shared by solvers, models and evaluation.

Shapes:
    fields  (B, C, *space)   C named channels on a uniform grid
    time    (B,)             physical time of each sample
    params  (B, P)           physical parameters (viscosity, inlet velocity, ...)
    mask    (B, 1, *space)   1 in the fluid, 0 in solids and padded walls; None if all fluid
    history (B, h, C, *space) earlier states, oldest first, for steppers that need several
    static  (B, S, *space)   input fields constant in time (bathymetry, ...); None without any
    schedule (B, T, P)       every step's parameters when they vary in time; `params` is
                             schedule[:, step], advanced by `evolve`
    inflow  (B, T, C)        cumulative amount of each channel that entered through the
                             boundaries by each stored step (zero for channels without);
                             `inflow_step()` is the next step's share (ProbConserv's b)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from surrogate.errors import InputError


@dataclass(frozen=True)
class GridState:
    """One time level of B independent simulations on a uniform grid."""

    fields: Tensor
    time: Tensor
    params: Tensor
    field_names: tuple[str, ...]
    param_names: tuple[str, ...] = ()
    mask: Tensor | None = None
    history: Tensor | None = None
    static: Tensor | None = None
    schedule: Tensor | None = None
    step: int = 0
    inflow: Tensor | None = None

    def __post_init__(self) -> None:
        check_grid(self.fields, self.field_names, "GridState.fields")
        b = self.fields.shape[0]
        if self.time.shape != (b,):
            raise InputError(f"GridState.time: expected shape ({b},), got {tuple(self.time.shape)}")
        if self.params.ndim != 2 or self.params.shape[0] != b or self.params.shape[1] != len(self.param_names):
            raise InputError(
                f"GridState.params: expected shape ({b}, {len(self.param_names)}) for {self.param_names}, got {tuple(self.params.shape)}"
            )
        if self.mask is not None and self.mask.shape != (b, 1, *self.fields.shape[2:]):
            raise InputError(f"GridState.mask: expected shape {(b, 1, *self.fields.shape[2:])}, got {tuple(self.mask.shape)}")

    @property
    def batch_size(self) -> int:
        return self.fields.shape[0]

    @property
    def space_shape(self) -> tuple[int, ...]:
        return tuple(self.fields.shape[2:])

    def evolve(self, fields: Tensor, time: Tensor, history: Tensor | None = None) -> GridState:
        """The next time level: new fields, time (and history), same static context; parameters
        that vary in time take the next step's values."""
        if self.schedule is None and self.inflow is None:
            return replace(self, fields=fields, time=time, history=history)
        step = self.step + 1
        params = self.params if self.schedule is None else self.schedule[:, min(step, self.schedule.shape[1] - 1)]
        return replace(self, fields=fields, time=time, history=history, step=step, params=params)

    def inflow_step(self) -> Tensor | None:
        """(B, C) what enters through the boundaries from this step to the next; None when not
        known (no inflow recorded, or past the recorded steps)."""
        if self.inflow is None or self.step + 1 >= self.inflow.shape[1]:
            return None
        return self.inflow[:, self.step + 1] - self.inflow[:, self.step]


def check_grid(fields: Tensor, names: tuple[str, ...], what: str) -> None:
    """Fail fast unless `fields` is (B, C, *space) with C == len(names) and 1-3 space dims."""
    if fields.ndim < 3 or fields.ndim > 5:
        raise InputError(f"{what}: expected (B, C, *space) with 1-3 space dims, got shape {tuple(fields.shape)}")
    if fields.shape[1] != len(names):
        raise InputError(f"{what}: {fields.shape[1]} channels but {len(names)} names {names}")


def check_finite(array: Tensor, what: str) -> None:
    """Fail with the count of bad values unless every entry of `array` is finite."""
    bad = ~torch.isfinite(array)
    if bool(bad.any()):
        raise InputError(f"{what}: {int(bad.sum())} NaN/Inf values out of {array.numel()}")


@dataclass(frozen=True)
class Trajectory:
    """Time series of B simulations, as produced by a rollout.

    Shapes:
        fields  (B, T, C, *space)
        time    (B, T)
    """

    fields: Tensor
    time: Tensor
    field_names: tuple[str, ...]

    @property
    def n_steps(self) -> int:
        return self.fields.shape[1]


@dataclass(frozen=True)
class MeshState:
    """One time level of B simulations on one unstructured mesh.

    Shapes:
        fields  (B, C, N)
        time    (B,)
    `graph` is the mesh as a torch_geometric `Data` (pos, edge_index, edge_attr, node_type).
    """

    fields: Tensor
    time: Tensor
    graph: object
    field_names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = int(self.graph.num_nodes)  # type: ignore[attr-defined]
        if self.fields.ndim != 3 or self.fields.shape[1] != len(self.field_names) or self.fields.shape[2] != n:
            raise InputError(
                f"MeshState.fields: expected (B, {len(self.field_names)}, {n}) for {self.field_names} on {n} nodes, "
                f"got {tuple(self.fields.shape)}"
            )
        if self.time.shape != (self.fields.shape[0],):
            raise InputError(f"MeshState.time: expected shape ({self.fields.shape[0]},), got {tuple(self.time.shape)}")

    def evolve(self, fields: Tensor, time: Tensor) -> MeshState:
        return replace(self, fields=fields, time=time)
