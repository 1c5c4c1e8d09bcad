"""Solver ensembles on Dask: each task runs one simulation and streams it to the server.

A LocalCluster of processes by default, the scheduler address the user gives, or a batch
system's cluster through dask-jobqueue (`jobqueue="slurm"` with its options: queue, cores,
memory, walltime, ...). Parameters
are drawn uniformly, by Latin hypercube or by Sobol sequence (scipy.stats.qmc). A failed
task is retried once by Dask, a silent one resubmitted by `Launcher.watch`; the server's
dedupe keeps a rerun simulation's steps from being counted twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import qmc

from surrogate.errors import InputError
from surrogate.online.local_cluster import local_cluster

log = logging.getLogger(__name__)

SAMPLERS = ("uniform", "lhs", "sobol")


def sample_space(n: int, space: dict[str, tuple[float, float]], method: str, seed: int) -> list[dict[str, float]]:
    """n parameter sets drawn from the box `space` (name -> (low, high)): uniformly, by Latin
    hypercube or by a scrambled Sobol sequence, all parameters at once."""
    if method not in SAMPLERS:
        raise InputError(f"sampler {method!r}: expected one of {SAMPLERS}")
    names, d = list(space), max(len(space), 1)
    if n == 0:
        return []
    if method == "uniform":
        u = np.random.default_rng(seed).uniform(size=(n, d))
    elif method == "lhs":
        u = qmc.LatinHypercube(d=d, seed=seed).random(n)
    else:
        u = qmc.Sobol(d=d, scramble=True, seed=seed).random(n)
    low = np.array([space[k][0] for k in names])
    high = np.array([space[k][1] for k in names])
    values = low + (high - low) * u[:, : len(names)]
    return [{k: float(v) for k, v in zip(names, row)} for row in values]


JOBQUEUES = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster",
    "oar": "OARCluster",
    "moab": "MoabCluster",
}


def jobqueue_cluster(name: str, options: dict[str, Any]) -> Any:
    """A dask-jobqueue cluster (`name` = slurm, pbs, ...) built with the batch system's options."""
    if name not in JOBQUEUES:
        raise InputError(f"stream.jobqueue {name!r}: expected one of {sorted(JOBQUEUES)}")
    try:
        import dask_jobqueue
    except ImportError:
        raise InputError("stream.jobqueue needs dask-jobqueue: pip install 'surrogate[cluster]'") from None
    try:
        return getattr(dask_jobqueue, JOBQUEUES[name])(**options)
    except (TypeError, ValueError) as e:
        raise InputError(f"stream.jobqueue_options for {name}: {e}") from None


class Launcher:
    """Submits simulations to a Dask cluster; `close()` cancels what is still running.

    A worker that dies mid-simulation is replaced by Dask and the task rerun; a simulation
    whose client stays silent (no step, no heartbeat) for `silent_s` is cancelled and
    resubmitted by `watch`, at most `max_resubmits` times. Either way the rerun starts from
    step 0 and the server drops the steps it already has, so nothing is counted twice.
    """

    def __init__(self, scheduler: str = "", n_workers: int = 1, jobqueue: str = "", jobqueue_options: dict[str, Any] | None = None) -> None:
        from dask.distributed import Client

        if jobqueue:
            self.cluster = jobqueue_cluster(jobqueue, jobqueue_options or {})
            self.cluster.scale(jobs=n_workers)
        elif scheduler:
            self.cluster = None
        else:
            self.cluster = local_cluster(n_workers)
        self.client = Client(scheduler or self.cluster)
        self.futures: dict[str, Any] = {}  # simulation id -> its current future
        self._calls: dict[str, tuple[Any, ...]] = {}
        self.resubmitted: dict[str, int] = {}
        self.skipped: list[str] = []
        self._started: dict[str, float] = {}

    def submit(self, sim_id: str, fn: Any, *args: Any) -> None:
        self._calls[sim_id] = (fn, *args)
        self._run(sim_id, 0)

    def _run(self, sim_id: str, attempt: int) -> None:
        fn, *args = self._calls[sim_id]
        self.futures[sim_id] = self.client.submit(fn, *args, retries=1, pure=False, key=f"{sim_id}-{attempt}")

    def submit_ensemble(
        self,
        addresses: list[tuple[str, str]],
        simulations: list[tuple[str, dict[str, float]]],
        runner: Callable[[str, str, str, dict[str, float], int], tuple[Any, ...]],
        skip: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """One task per (simulation id, parameters); `runner(data, control, id, params, i)` gives
        the function and its arguments. Simulations named in `skip` (finished before a restart)
        are not rerun. With several servers (one per training rank), simulation i streams to
        server i mod len(addresses)."""
        for i, (sim, params) in enumerate(simulations):
            if sim in skip:
                self.skipped.append(sim)
                continue
            data, control = addresses[i % len(addresses)]
            fn, *args = runner(data, control, sim, params, i)
            self.submit(sim, fn, *args)

    def watch(self, last_seen: dict[str, float], silent_s: float, max_resubmits: int = 2) -> list[str]:
        """Cancel and resubmit every running simulation silent for `silent_s` (by the server's
        `last_seen`, monotonic seconds); returns those resubmitted now."""
        now, redone = time.monotonic(), []
        for sim, fut in list(self.futures.items()):
            seen = last_seen.get(sim)
            if seen is not None:
                seen = max(seen, self._started.get(sim, seen))
            if fut.done() or seen is None or now - seen < silent_s:
                continue
            n = self.resubmitted.get(sim, 0)
            if n >= max_resubmits:
                log.error("simulation %s silent for %.0f s after %d resubmissions; giving up on it", sim, now - seen, n)
                fut.cancel()
                continue
            fut.cancel()
            self.resubmitted[sim] = n + 1
            self._started[sim] = now  # the new run gets silent_s to say something
            self._run(sim, n + 1)
            log.warning("simulation %s silent for %.0f s: resubmitted (%d of %d)", sim, silent_s, n + 1, max_resubmits)
            redone.append(sim)
        return redone

    def finished(self) -> int:
        return sum(f.status == "finished" for f in self.futures.values())

    def failures(self) -> list[str]:
        """'simulation: error' for each task that failed (after Dask's retry)."""
        return [f"{sim}: {str(f.exception())[:300]}" for sim, f in self.futures.items() if f.status == "error"]

    def close(self) -> None:
        for f in self.futures.values():
            f.cancel()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
