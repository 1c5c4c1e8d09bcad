"""The stream source's session: a solver ensemble launched on Dask streams over ZeroMQ into
this rank's server buffer, and an `OnlineSource` draws training batches from it.

    launcher (rank 0) -> solvers -> ZeroMQ -> StreamServer buffer (every rank) -> OnlineSource

No training data touches the disk. Under torch.distributed every rank runs its own server
and buffer; rank 0 launches the ensemble, simulation i streaming to rank i mod world size.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import torch.distributed as dist
from torch import Tensor

from surrogate.errors import InputError
from surrogate.online.buffer import AbstractBuffer, FIFOBuffer, FIROBuffer, MelissaBuffer, ReservoirBuffer
from surrogate.online.launcher import Launcher, sample_parameters
from surrogate.online.server import StreamServer
from surrogate.online.source import OnlineSource
from surrogate.training.checkpoint import load_checkpoint
from surrogate.training.trainer import world

BUFFERS: dict[str, Callable[..., AbstractBuffer]] = {
    "fifo": FIFOBuffer,
    "firo": FIROBuffer,
    "reservoir": ReservoirBuffer,
    "melissa": MelissaBuffer,
}


@dataclass
class StreamConfig:
    """The solver ensemble (NS2D over a viscosity range), the buffer it fills and how training draws from it."""

    n_simulations: int = 64
    resolution: int = 32
    dt: float = 0.25
    n_steps: int = 20
    viscosity_low: float = 1e-3
    viscosity_high: float = 1e-3
    sampler: str = "lhs"
    scheduler: str = ""
    workers: int = 1  # LocalCluster processes, or batch jobs with a jobqueue
    jobqueue: str = ""  # slurm, pbs, sge, lsf, htcondor, oar, moab: run the ensemble as batch jobs (dask-jobqueue)
    jobqueue_options: dict[str, Any] = field(default_factory=dict)  # e.g. {cores: 4, memory: 8GB, queue: normal}
    buffer: str = "melissa"
    buffer_mb: float = 64.0
    watermark: int = 64
    seed: int = 0
    silent_s: float = 120.0  # a simulation silent this long is cancelled and resubmitted
    max_resubmits: int = 2
    timeout_s: float = 300.0  # training stops (on every rank) when no data came for this long
    steps_per_epoch: int = 50  # batches drawn from the buffer per epoch
    test_simulations: int = 6  # fresh simulations the trained model is rolled out on

    def __post_init__(self) -> None:
        if self.buffer not in BUFFERS:
            raise InputError(f"stream.buffer {self.buffer!r}: expected one of {sorted(BUFFERS)}")

    def schema(self) -> dict[str, Any]:
        """The data schema of the streamed steps (fixed by this configuration)."""
        return {
            "dataset_name": "ns2d-online",
            "channel_names": ["vorticity"],
            "param_names": ["viscosity"],
            "param_offset": [self.viscosity_low],
            "param_scale": [max(self.viscosity_high - self.viscosity_low, self.viscosity_low)],
            "space_shape": [self.resolution, self.resolution],
            "dt": self.dt,
            "n_input": 1,
        }


def gather(obj: Any, world_size: int) -> list[Any]:
    """obj from every rank, in rank order ([obj] without torch.distributed)."""
    if world_size == 1:
        return [obj]
    out: list[Any] = [None] * world_size
    dist.all_gather_object(out, obj)
    return out


class StreamSession:
    """`with StreamSession(cfg, batch_size, resume) as s:` the server listens, rank 0 has
    launched the ensemble, and `s.source` yields batches of (step -> step + 1) pairs.

    `resume` (a `last.pt`) restores rank 0's server (buffer, steps seen, finished
    simulations) before the launch: finished simulations are not rerun and steps already
    received are dropped when unfinished ones stream again.
    """

    def __init__(self, cfg: StreamConfig, batch_size: int, resume: str | Path | None = None) -> None:
        self.cfg, self.resume = cfg, resume
        self.rank, self.world_size = world()
        if batch_size % self.world_size:
            raise InputError(f"data.batch_size {batch_size} (global) is not divisible by the {self.world_size} processes")
        if cfg.watermark < batch_size // self.world_size:
            raise InputError(
                f"stream.watermark {cfg.watermark}: training starts when the buffer holds this many pairs, "
                f"fewer than one batch of {batch_size // self.world_size} per process; set it to at least that"
            )
        self.server = StreamServer(BUFFERS[cfg.buffer](int(cfg.buffer_mb * 1e6), seed=cfg.seed + self.rank))
        self.source = OnlineSource(
            self.server,
            batch_size // self.world_size,
            cfg.steps_per_epoch,
            cfg.watermark,
            ["vorticity"],
            ["viscosity"],
            timeout_s=cfg.timeout_s,
        )
        self.launcher: Launcher | None = None
        self._stop = threading.Event()

    def __enter__(self) -> StreamSession:
        s = self.cfg
        self.server.__enter__()
        try:
            if self.resume is not None and self.rank == 0:
                self.source.load_state_dict(load_checkpoint(self.resume)["source"])
            addresses = gather((self.server.data_address, self.server.control_address), self.world_size)
            if self.rank == 0:
                self.launcher = Launcher(s.scheduler, s.workers, s.jobqueue, s.jobqueue_options)
                viscosities = sample_parameters(s.n_simulations, s.viscosity_low, s.viscosity_high, s.sampler, s.seed)
                self.launcher.submit_ns2d(
                    [a for a, _ in addresses],
                    [c for _, c in addresses],
                    viscosities,
                    s.seed,
                    s.resolution,
                    s.dt,
                    s.n_steps,
                    skip=set(self.server.finished),
                )
                threading.Thread(target=self._watchdog, daemon=True).start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _watchdog(self) -> None:
        assert self.launcher is not None
        while not self._stop.wait(1.0):
            with self.server.lock:
                seen = dict(self.server.last_seen)
            self.launcher.watch(seen, self.cfg.silent_s, self.cfg.max_resubmits)

    def metrics(self) -> dict[str, Any]:
        """The servers' and the launcher's counters (rank 0 gets every rank's under `ranks`)."""
        per_rank = gather({**self.server.metrics(), "wait_fraction": self.source.wait_fraction}, self.world_size)
        out = {**per_rank[0], "ranks": per_rank} if self.world_size > 1 else dict(per_rank[0])
        if self.launcher is not None:
            out.update(
                finished_tasks=self.launcher.finished(), skipped_finished=len(self.launcher.skipped), resubmitted=self.launcher.resubmitted
            )
        return out

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        try:
            if self.launcher is not None:
                self.launcher.close()
        finally:
            self.server.__exit__(exc_type, exc, tb)


def first_batch_stats(session: StreamSession) -> tuple[Tensor, Tensor]:
    """Normalization (mean, std) of shape (1,) from rank 0's first streamed batch, broadcast to every rank."""
    first = session.source.batch()
    mean, std = first["x"].mean().reshape(1).double(), first["x"].std().reshape(1).double()
    if session.world_size > 1:
        dist.broadcast(mean, 0)
        dist.broadcast(std, 0)
    return mean, std
