"""Solver ensembles on Dask: each task runs one simulation and streams it to the server.

A LocalCluster of processes by default, or the scheduler address the user gives. Parameters
are drawn uniformly, by Latin hypercube or by Sobol sequence (scipy.stats.qmc). A failed
task is retried once by Dask; the server's dedupe keeps a retried simulation's steps from
being counted twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import qmc

from surrogate.errors import InputError

SAMPLERS = ("uniform", "lhs", "sobol")


def sample_parameters(n: int, low: float, high: float, method: str, seed: int) -> np.ndarray:
    """n values in [low, high] drawn uniformly, by Latin hypercube or by a scrambled Sobol sequence."""
    if method not in SAMPLERS:
        raise InputError(f"sampler {method!r}: expected one of {SAMPLERS}")
    if method == "uniform":
        u = np.random.default_rng(seed).uniform(size=n)
    elif method == "lhs":
        u = qmc.LatinHypercube(d=1, seed=seed).random(n)[:, 0]
    else:
        u = qmc.Sobol(d=1, scramble=True, seed=seed).random(n)[:, 0]
    return low + (high - low) * u


def run_ns2d_client(data: str, control: str, sim_id: str, seed: int, viscosity: float, resolution: int, dt: float, n_steps: int) -> str:
    """One NS2D simulation streamed to the server (runs in a Dask worker)."""
    import torch

    from surrogate.online.client import OnlineClient, stream
    from surrogate.solvers.ns2d import NS2D

    torch.set_num_threads(1)
    solver = NS2D(resolution, dt=dt)
    state = solver.init_random(1, viscosity, seed=seed)
    with OnlineClient(data, control, sim_id, {"viscosity": viscosity}) as client:
        stream(solver, state, n_steps, client)
    return sim_id


class Launcher:
    """Submits simulations to a Dask cluster; `close()` cancels what is still running."""

    def __init__(self, scheduler: str = "", n_workers: int = 1) -> None:
        from dask.distributed import Client, LocalCluster

        self.cluster = None if scheduler else LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        self.client = Client(scheduler or self.cluster)
        self.futures: list[Any] = []

    def submit_ns2d(self, data: str, control: str, viscosities: np.ndarray, seed: int, resolution: int, dt: float, n_steps: int) -> None:
        for i, nu in enumerate(viscosities):
            self.futures.append(
                self.client.submit(
                    run_ns2d_client, data, control, f"ns2d-{seed}-{i}", seed * 100_003 + i, float(nu), resolution, dt, n_steps,
                    retries=1, pure=False,
                )
            )

    def finished(self) -> int:
        return sum(f.status == "finished" for f in self.futures)

    def close(self) -> None:
        for f in self.futures:
            f.cancel()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
