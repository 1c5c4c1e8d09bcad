"""Turbulent channel data from the built-in LES: an ensemble of trajectories in the canonical store.

All trajectories run as one batch of the channel solver, each from its own random disturbance
of Reichardt's mean profile; the first `spinup` h/u_tau are simulated and dropped, so the stored
snapshots are developed turbulence. Drive "pressure" fixes -dP/dx (Re_tau exact on average);
"flow_rate" fixes the bulk velocity at that of the initial profile, and Re_tau follows from
the wall shear (e.g. 103 for the nominal 120 on 8 x 16 x 8 cells). The store is the one
`surrogate convert channel` writes (u, v, w, p at the cell centres, x and z periodic, y
walls), so the same training configs apply.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from surrogate.datasets.channel import CHANNELS, ChannelData, write_channel_store
from surrogate.device import resolve_device
from surrogate.errors import InputError
from surrogate.solvers.channel import ChannelGrid, ChannelSolver, perturbed_initial


@dataclass
class ChannelGenConfig:
    nx: int = 16
    ny: int = 24
    nz: int = 16
    lx: float = 2 * math.pi
    lz: float = math.pi
    re_tau: float = 180.0
    closure: str = "dsm"
    drive: str = "pressure"
    n_trajectories: int = 4
    n_snapshots: int = 40
    dt: float = 0.1
    spinup: float = 5.0
    amplitude: float = 0.1
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.n_trajectories < 1 or self.n_snapshots < 2:
            raise InputError(f"channel data: need n_trajectories >= 1 and n_snapshots >= 2; got {self.n_trajectories}, {self.n_snapshots}")
        if self.spinup < 0:
            raise InputError(f"channel data: spinup must be >= 0, got {self.spinup}")

    def steps(self) -> int:
        """Solver record steps: spin-up plus the stored snapshots after the first."""
        return round(self.spinup / self.dt) + self.n_snapshots - 1


def generate_channel(cfg: ChannelGenConfig, out: str | Path, on_step: Callable[[int], None] | None = None) -> Path:
    """Simulate the ensemble and write it (atomically) to the store `out`. Returns the path."""
    grid = ChannelGrid(cfg.nx, cfg.ny, cfg.nz, cfg.lx, cfg.lz)
    solver = ChannelSolver(grid, dt=cfg.dt, closure=cfg.closure, drive=cfg.drive, device=resolve_device(cfg.device))
    f0 = torch.cat([perturbed_initial(grid, 1, cfg.re_tau, cfg.amplitude, seed=cfg.seed + b) for b in range(cfg.n_trajectories)])
    state = solver.init(f0, cfg.re_tau)
    for _ in range(round(cfg.spinup / cfg.dt)):
        state = solver.step(state)
        if on_step:
            on_step(1)
    snaps = [state.fields]
    for _ in range(cfg.n_snapshots - 1):
        state = solver.step(state)
        snaps.append(state.fields)
        if on_step:
            on_step(1)
    fields = torch.stack(snaps, 1).permute(0, 1, 3, 4, 5, 2).float().cpu().numpy()  # (B, T, Nx, Ny, Nz, 4)
    data = ChannelData(fields, grid.x().numpy(), solver.yc.cpu().numpy(), grid.z().numpy(), CHANNELS, cfg.dt)
    return write_channel_store(data, out, name=f"channel_les_{cfg.closure}", re_tau=cfg.re_tau)
