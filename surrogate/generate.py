"""Data generation: a rollout of a numerical solver written into the canonical store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from surrogate.datasets.store import GridSchema, GridStoreWriter
from surrogate.errors import InputError
from surrogate.evaluation.rollout import rollout
from surrogate.solvers.gpme import GPME, PARAM_NAME
from surrogate.solvers.ns2d import NS2D, PARAM_NAMES


@dataclass
class NS2DDataConfig:
    """An NS2D ensemble: GRF initial vorticity (Li et al. 2021), Li's forcing, periodic unit square.

    The first `burn_in` intervals are simulated but not stored, so that the stored
    trajectories start from a developed flow rather than the raw random field.
    """

    resolution: int = 64
    n_trajectories: int = 64
    n_steps: int = 40
    dt: float = 0.25
    burn_in: int = 0
    viscosity: float = 1e-3
    seed: int = 0
    batch_size: int = 32
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.n_trajectories < 3 or self.n_steps < 2 or self.batch_size < 1:
            raise InputError("NS2D data: need n_trajectories >= 3, n_steps >= 2, batch_size >= 1")
        if not 0 <= self.valid_fraction + self.test_fraction < 1:
            raise InputError("NS2D data: valid_fraction + test_fraction must be in [0, 1)")


def split_indices(n: int, valid_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """A seeded random partition of range(n) into train / valid / test (at least one test case)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test_fraction))
    n_valid = max(1 if valid_fraction > 0 else 0, round(n * valid_fraction))
    return {
        "train": np.sort(perm[n_valid + n_test :]),
        "valid": np.sort(perm[:n_valid]),
        "test": np.sort(perm[n_valid : n_valid + n_test]),
    }


def generate_ns2d(cfg: NS2DDataConfig, out: str | Path, on_step: Callable[[int], None] | None = None) -> Path:
    """Simulate the ensemble of `cfg` and write it to the store `out` (atomically). Returns the path.

    `on_step` is called after every solver step (for progress bars).
    """
    n = cfg.resolution
    solver = NS2D(n, dt=cfg.dt, device=cfg.device)
    grid = np.arange(n) / n
    schema = GridSchema(
        dataset_name="ns2d",
        time=np.arange(cfg.n_steps) * cfg.dt,
        coords={"x": grid, "y": grid},
        scalar_fields=("vorticity",),
        param_names=PARAM_NAMES,
        param_offset=(cfg.viscosity,),
        param_scale=(cfg.viscosity,),
        boundary={"x": "periodic", "y": "periodic"},
    )
    splits = split_indices(cfg.n_trajectories, cfg.valid_fraction, cfg.test_fraction, cfg.seed)
    with GridStoreWriter(out, schema, cfg.n_trajectories) as w:
        for start in range(0, cfg.n_trajectories, cfg.batch_size):
            b = min(cfg.batch_size, cfg.n_trajectories - start)
            state = solver.init_random(b, cfg.viscosity, seed=cfg.seed * 1_000_003 + start)
            for _ in range(cfg.burn_in):
                state = solver.step(state)
                if on_step:
                    on_step(1)
            traj = rollout(solver, state, cfg.n_steps - 1, on_step=(lambda _: on_step(1)) if on_step else None)
            w.write(start, {"vorticity": traj.fields[:, :, 0].float().cpu().numpy()}, state.params.cpu().numpy())
        w.set_splits(**splits)
    return Path(out)


def ns2d_solver_steps(cfg: NS2DDataConfig) -> int:
    """How many batched solver steps `generate_ns2d` takes (the progress bar's total)."""
    n_batches = -(-cfg.n_trajectories // cfg.batch_size)
    return n_batches * (cfg.burn_in + cfg.n_steps - 1)


# ProbConserv's parameter ranges: conductivity k, degree m, and u* of the Stefan problem.
GPME_RANGES = {"heat": (1.0, 5.0), "pme": (2.0, 6.0), "stefan": (0.55, 0.7)}


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
    traj = rollout(solver, state, cfg.n_steps - 1, on_step=(lambda _: on_step(1)) if on_step else None)
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
        w.write(0, {"u": traj.fields[:, :, 0].float().cpu().numpy()}, params[:, None])
        w.set_splits(**split_indices(cfg.n_trajectories, cfg.valid_fraction, cfg.test_fraction, cfg.seed))
    return Path(out)
