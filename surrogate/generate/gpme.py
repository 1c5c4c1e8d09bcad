"""GPME ensemble (heat, porous medium, Stefan) with ProbConserv's parameter ranges -> the grid store.

Beside u the store records `u_boundary_inflow` (B, T): the mass that entered through the
boundaries since t = 0, summed from the solver's boundary fluxes (zero for the periodic heat
case). With the initial mass it is the right-hand side b of the conservation law that
ProbConserv imposes, known without the solution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from surrogate.datasets.store import GridSchema, GridStoreWriter
from surrogate.errors import InputError
from surrogate.generate.splits import split_indices
from surrogate.solvers.gpme import GPME, GPME_RANGES, PARAM_NAME

# ProbConserv's parameter ranges: conductivity k, degree m, and u* of the Stefan problem.


@dataclass
class GPMEDataConfig:
    """A GPME ensemble: parameters drawn uniformly from ProbConserv's range of the case."""

    case: str = "heat"
    n_trajectories: int = 32
    n_cells: int = 128
    n_steps: int = 21
    dt: float = 0.05
    max_substep: float = 1e-3
    seed: int = 0
    valid_fraction: float = 0.1
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.case not in GPME_RANGES:
            raise InputError(f"GPME case {self.case!r}: expected one of {sorted(GPME_RANGES)}")
        if self.n_trajectories < 3 or self.n_steps < 2:
            raise InputError("GPME data: need n_trajectories >= 3 and n_steps >= 2")


def generate_gpme(cfg: GPMEDataConfig, out: str | Path, on_step: Callable[[int], None] | None = None) -> Path:
    """Solve the GPME ensemble of `cfg` (all trajectories in one batch) into the store `out`."""
    solver = GPME(cfg.case, cfg.n_cells, dt=cfg.dt, max_substep=cfg.max_substep)
    lo, hi = GPME_RANGES[cfg.case]
    params = np.random.default_rng(cfg.seed).uniform(lo, hi, cfg.n_trajectories)
    state = solver.init(params)
    levels, inflow = [state.fields[:, 0]], [torch.zeros_like(state.time)]
    for _ in range(cfg.n_steps - 1):
        state, entered = solver.flux_step(state)
        levels.append(state.fields[:, 0])
        inflow.append(inflow[-1] + entered)
        if on_step:
            on_step(1)
    name = PARAM_NAME[cfg.case]
    schema = GridSchema(
        dataset_name=f"gpme_{cfg.case}",
        time=np.arange(cfg.n_steps) * cfg.dt,
        coords={"x": solver.x.cpu().numpy()},
        scalar_fields=("u",),
        param_names=(name,),
        param_offset=((lo + hi) / 2,),
        param_scale=((hi - lo) / 2,),
        boundary={"x": "periodic" if cfg.case == "heat" else "wall"},
    )
    with GridStoreWriter(out, schema, cfg.n_trajectories) as w:
        w.write(0, {"u": torch.stack(levels, 1).float().cpu().numpy()}, params[:, None])
        w.write_boundary_inflow("u", torch.stack(inflow, 1).cpu().numpy())
        w.set_splits(**split_indices(cfg.n_trajectories, cfg.valid_fraction, cfg.test_fraction, cfg.seed))
    return Path(out)
