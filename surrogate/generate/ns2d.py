"""NS2D ensemble: GRF initial vorticity, Li's forcing, periodic unit square -> the grid store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import qmc

from surrogate.datasets.store import GridSchema, GridStoreWriter
from surrogate.device import resolve_device
from surrogate.errors import InputError
from surrogate.evaluation.rollout import rollout
from surrogate.generate.splits import split_indices
from surrogate.solvers.ns2d import NS2D, PARAM_NAMES


@dataclass
class NS2DDataConfig:
    """An NS2D ensemble: GRF initial vorticity (Li et al. 2021), Li's forcing, periodic unit square.

    The first `burn_in` intervals are simulated but not stored, so that the stored
    trajectories start from a developed flow rather than the raw random field. With
    `viscosity_high` above `viscosity`, each trajectory's viscosity is drawn from that range
    (Latin hypercube), normalized as the online stream normalizes it.
    """

    resolution: int = 64
    n_trajectories: int = 64
    n_steps: int = 40
    dt: float = 0.25
    burn_in: int = 0
    viscosity: float = 1e-3
    viscosity_high: float = 0.0
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
        if self.viscosity_high and self.viscosity_high < self.viscosity:
            raise InputError(f"NS2D data: viscosity_high {self.viscosity_high} is below viscosity {self.viscosity}")

    def viscosities(self) -> np.ndarray:
        """(n_trajectories,) each trajectory's viscosity."""
        if self.viscosity_high <= self.viscosity:
            return np.full(self.n_trajectories, self.viscosity)
        u = qmc.LatinHypercube(d=1, seed=self.seed).random(self.n_trajectories)[:, 0]
        return self.viscosity + (self.viscosity_high - self.viscosity) * u

    def param_scale(self) -> float:
        return max(self.viscosity_high - self.viscosity, self.viscosity)


def generate_ns2d(cfg: NS2DDataConfig, out: str | Path, on_step: Callable[[int], None] | None = None) -> Path:
    """Simulate the ensemble of `cfg` and write it to the store `out` (atomically). Returns the path.

    `on_step` is called after every solver step (for progress bars).
    """
    n = cfg.resolution
    solver = NS2D(n, dt=cfg.dt, device=resolve_device(cfg.device))
    grid = np.arange(n) / n
    schema = GridSchema(
        dataset_name="ns2d",
        time=np.arange(cfg.n_steps) * cfg.dt,
        coords={"x": grid, "y": grid},
        scalar_fields=("vorticity",),
        param_names=PARAM_NAMES,
        param_offset=(cfg.viscosity,),
        param_scale=(cfg.param_scale(),),
        boundary={"x": "periodic", "y": "periodic"},
    )
    splits = split_indices(cfg.n_trajectories, cfg.valid_fraction, cfg.test_fraction, cfg.seed)
    viscosities = cfg.viscosities()
    with GridStoreWriter(out, schema, cfg.n_trajectories) as w:
        for start in range(0, cfg.n_trajectories, cfg.batch_size):
            b = min(cfg.batch_size, cfg.n_trajectories - start)
            state = solver.init_random(b, torch.as_tensor(viscosities[start : start + b]), seed=cfg.seed * 1_000_003 + start)
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
