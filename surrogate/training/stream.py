"""The stream source's session: a solver ensemble launched on Dask streams over ZeroMQ into
this rank's server buffer, and an `OnlineSource` draws training batches from it.

    launcher (rank 0) -> solvers -> ZeroMQ -> StreamServer buffer (every rank) -> OnlineSource

No training data touches the disk. Under torch.distributed every rank runs its own server
and buffer; rank 0 launches the ensemble, simulation i streaming to rank i mod world size.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import torch.distributed as dist
from torch import Tensor

from surrogate.datasets.atomic import atomic_path
from surrogate.errors import InputError
from surrogate.online.buffer import AbstractBuffer, FIFOBuffer, FIROBuffer, MelissaBuffer, ReservoirBuffer
from surrogate.online.launcher import Launcher, sample_space
from surrogate.online.protocol import StepMessage
from surrogate.online.runners import FOAM_BASHRC, run_command, run_ns2d, run_openfoam
from surrogate.online.server import StreamSchema, StreamServer
from surrogate.online.source import OnlineSource
from surrogate.training.checkpoint import load_checkpoint
from surrogate.training.trainer import world

log = logging.getLogger(__name__)

BUFFERS: dict[str, Callable[..., AbstractBuffer]] = {
    "fifo": FIFOBuffer,
    "firo": FIROBuffer,
    "reservoir": ReservoirBuffer,
    "melissa": MelissaBuffer,
}


SOLVERS = ("ns2d", "command", "openfoam", "attach")


@dataclass
class StreamConfig:
    """What runs (`solver`), the buffer it fills and how training draws from it.

    `solver`: `ns2d` (built-in, over the viscosity range), `command` (the user's executable,
    `command` formatted with the parameters), `openfoam` (the case folder `case` as a
    template, each parameter written to its `dictionaries` entry) or `attach` (no launcher:
    any client that connects is taken). `parameters` maps each parameter to its sampling
    range [low, high]; `test_simulations` more simulations, drawn apart from the training
    ones, are held out for the evaluation (with `attach`: the first ones to connect).
    """

    solver: str = "ns2d"
    command: str = ""  # command: e.g. "./my_solver --nu {nu} --steps 200"; run in `workdir`
    case: str = ""  # openfoam: the template case folder
    dictionaries: dict[str, str] = field(default_factory=dict)  # openfoam: parameter -> FILE:KEY, e.g. constant/transportProperties:nu
    parameters: dict[str, list[float]] = field(default_factory=dict)  # name -> [low, high]
    fields: list[str] = field(default_factory=list)  # the streamed fields to train on (all when empty)
    bashrc: str = FOAM_BASHRC  # openfoam: sourced before meshing and running ("" when the environment has OpenFOAM)
    workdir: str = ""  # where commands and cases run (default: OUT_DIR/ensemble)
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
    host: str = "127.0.0.1"  # the interface the stream server binds (another needs CURVE keys)
    port: int = 0  # the data port (control: port + 1; rank r: + 2 r); 0: any free port, see OUT_DIR/stream.json
    advertise: str = ""  # the address solvers connect to (default: host); for remote workers
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
        if self.solver not in SOLVERS:
            raise InputError(f"stream.solver {self.solver!r}: expected one of {list(SOLVERS)}")
        for name, r in self.parameters.items():
            ok = isinstance(r, (list, tuple)) and len(r) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in r)
            if not ok or r[0] > r[1]:
                raise InputError(f"stream.parameters.{name}: expected [low, high] with finite low <= high, got {r!r}")
        if self.solver == "command" and not self.command.strip():
            raise InputError("stream.solver command: set stream.command, e.g. './my_solver --nu {nu}'")
        if self.solver == "openfoam":
            if not (Path(self.case) / "system" / "controlDict").is_file():
                raise InputError(f"stream.case {self.case!r}: not an OpenFOAM case folder (no system/controlDict)")
            missing = sorted(set(self.parameters) - set(self.dictionaries))
            if missing or set(self.dictionaries) - set(self.parameters):
                raise InputError(
                    f"stream.dictionaries {self.dictionaries}: every parameter {sorted(self.parameters)} needs its "
                    f"FILE:KEY entry (missing {missing}), and only parameters have one"
                )
        if self.solver != "ns2d" and self.test_simulations < 1:
            raise InputError(f"stream.test_simulations {self.test_simulations}: expected at least 1 held-out simulation")

    def space(self) -> dict[str, tuple[float, float]]:
        """Each parameter's sampling range (NS2D's viscosity range unless `parameters` says)."""
        if not self.parameters and self.solver == "ns2d":
            return {"viscosity": (self.viscosity_low, self.viscosity_high)}
        return {k: (float(lo), float(hi)) for k, (lo, hi) in self.parameters.items()}

    def schema(self) -> dict[str, Any]:
        """The data schema of the built-in NS2D stream (fixed by this configuration)."""
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
    launched the ensemble, and `s.source` yields batches of (step -> step + 1) pairs once the
    task has set `s.source.collate` (from `s.stream_schema()`, fixed by the first message).

    `resume` (a `last.pt`) restores rank 0's server (buffer, steps seen, finished and
    held-out simulations) before the launch: finished simulations are not rerun and steps
    already received are dropped when unfinished ones stream again.
    """

    def __init__(self, cfg: StreamConfig, batch_size: int, resume: str | Path | None = None, out_dir: str | Path = ".") -> None:
        self.cfg, self.resume, self.out_dir = cfg, resume, Path(out_dir)
        self.workdir = Path(cfg.workdir or self.out_dir / "ensemble").absolute()
        self.rank, self.world_size = world()
        if batch_size % self.world_size:
            raise InputError(f"data.batch_size {batch_size} (global) is not divisible by the {self.world_size} processes")
        if cfg.watermark < batch_size // self.world_size:
            raise InputError(
                f"stream.watermark {cfg.watermark}: training starts when the buffer holds this many pairs, "
                f"fewer than one batch of {batch_size // self.world_size} per process; set it to at least that"
            )
        launched = cfg.solver not in ("ns2d", "attach") and self.rank == 0
        self.held_out_ids = [f"test-{cfg.seed}-{i}" for i in range(cfg.test_simulations)] if launched else []
        hold_first = cfg.test_simulations if cfg.solver == "attach" and self.rank == 0 else 0
        self.server = StreamServer(
            BUFFERS[cfg.buffer](int(cfg.buffer_mb * 1e6), seed=cfg.seed + self.rank),
            host=cfg.host,
            hold_out=self.held_out_ids,
            hold_first=hold_first,
            port=cfg.port + 2 * self.rank if cfg.port else 0,
        )
        self.source = OnlineSource(self.server, batch_size // self.world_size, cfg.steps_per_epoch, cfg.watermark, timeout_s=cfg.timeout_s)
        self.launcher: Launcher | None = None
        self._stop = threading.Event()

    def __enter__(self) -> StreamSession:
        s = self.cfg
        self.server.__enter__()
        try:
            if self.resume is not None and self.rank == 0:
                self.source.load_state_dict(load_checkpoint(self.resume)["source"])
            addresses = gather(self.server.addresses(s.advertise), self.world_size)
            if self.rank == 0:
                write_addresses(self.out_dir / "stream.json", addresses)
            if self.rank == 0 and s.solver != "attach":
                self.workdir.mkdir(parents=True, exist_ok=True)
                self.launcher = Launcher(s.scheduler, s.workers, s.jobqueue, s.jobqueue_options)
                ids = simulation_ids(s.solver, s.seed, s.n_simulations)
                train = list(zip(ids, sample_space(s.n_simulations, s.space(), s.sampler, s.seed)))
                held = list(zip(self.held_out_ids, sample_space(len(self.held_out_ids), s.space(), s.sampler, s.seed + 7919)))
                skip = set(self.server.finished)
                self.launcher.submit_ensemble(addresses, train, self._runner, skip)
                self.launcher.submit_ensemble(addresses[:1], held, self._runner, skip)  # rank 0 records the held-out ones
                threading.Thread(target=self._watchdog, daemon=True).start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _runner(self, data: str, control: str, sim: str, params: dict[str, float], i: int) -> tuple[Any, ...]:
        """The function and arguments that run simulation `sim` in a worker."""
        s = self.cfg
        if s.solver == "ns2d":
            return (run_ns2d, data, control, sim, params, s.seed * 100_003 + i, s.resolution, s.dt, s.n_steps)
        if s.solver == "command":
            return (run_command, data, control, sim, params, s.command, str(self.workdir))
        case = str(Path(s.case).absolute())
        return (run_openfoam, data, control, sim, params, case, dict(s.dictionaries), list(s.fields), str(self.workdir), s.bashrc)

    def _watchdog(self) -> None:
        assert self.launcher is not None
        while not self._stop.wait(1.0):
            with self.server.lock:
                seen = dict(self.server.last_seen)
            self.launcher.watch(seen, self.cfg.silent_s, self.cfg.max_resubmits)

    def stream_schema(self) -> StreamSchema:
        """The stream's schema, once the first valid message fixed it (waits up to `timeout_s`)."""
        schema = self.server.wait_schema(self.cfg.timeout_s)
        if schema is None:
            raise TimeoutError(f"no valid step arrived in {self.cfg.timeout_s:.0f} s: {self._why()}")
        return schema

    def _why(self) -> str:
        m = self.server.metrics()
        failed = self.launcher.failures() if self.launcher is not None else []
        return f"received {m['received']}, rejected {m['bad']}" + (f"; failed simulations: {failed[:3]}" if failed else "")

    def held_out(self) -> dict[str, list[StepMessage]]:
        """The held-out simulations' trajectories (rank 0), after waiting up to `timeout_s` for
        all of them to finish: {simulation id: its steps in order}."""
        expected = len(self.held_out_ids) or self.cfg.test_simulations
        if not self.server.wait_held_out(expected, self.cfg.timeout_s):
            log.warning("%d of %d held-out simulations finished in %.0f s", len(self.server.held_out()), expected, self.cfg.timeout_s)
        held = self.server.held_out()
        if not held:
            raise InputError(f"no held-out simulation finished within stream.timeout_s {self.cfg.timeout_s:.0f} s: {self._why()}")
        return held

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


def write_addresses(path: Path, addresses: list[tuple[str, str]]) -> None:
    """OUT_DIR/stream.json: where solvers connect, one (data, control) pair per training rank
    (what an attached solver, started by the user's own job, reads), written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"data": [d for d, _ in addresses], "control": [c for _, c in addresses]}, indent=2))


def write_stream_metrics(out_dir: Path, metrics: dict[str, Any]) -> Path:
    """OUT_DIR/stream_metrics.json: what the servers received, rejected and kept; the launcher's counts."""
    path = out_dir / "stream_metrics.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, default=str))
    return path


def simulation_ids(solver: str, seed: int, n: int) -> list[str]:
    return [f"{solver}-{seed}-{i}" for i in range(n)]


def first_batch_stats(session: StreamSession) -> tuple[Tensor, Tensor]:
    """Per-channel normalization (mean, std), each (C,), from rank 0's first streamed batch
    (x: (B, 1, C, *space)), broadcast to every rank."""
    x = session.source.batch()["x"][:, 0]  # (B, C, *space)
    x = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    mean, std = x.mean(1), x.std(1).clamp_min(1e-12)
    if session.world_size > 1:
        dist.broadcast(mean, 0)
        dist.broadcast(std, 0)
    return mean, std
