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
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import torch.distributed as dist
import zmq
from torch import Tensor

from surrogate.datasets.atomic import atomic_path
from surrogate.errors import InputError
from surrogate.online.buffer import AbstractBuffer, FIFOBuffer, FIROBuffer, MelissaBuffer, ReservoirBuffer
from surrogate.online.builtin import BUILTINS, run_builtin
from surrogate.online.curve import load_or_create
from surrogate.online.launcher import Launcher, sample_space
from surrogate.online.protocol import StepMessage
from surrogate.online.runners import FOAM_BASHRC, run_command, run_openfoam
from surrogate.online.server import StreamSchema, StreamServer
from surrogate.online.source import OnlineSource, gather
from surrogate.training.checkpoint import load_checkpoint
from surrogate.training.trainer import world

log = logging.getLogger(__name__)

BUFFERS: dict[str, Callable[..., AbstractBuffer]] = {
    "fifo": FIFOBuffer,
    "firo": FIROBuffer,
    "reservoir": ReservoirBuffer,
    "melissa": MelissaBuffer,
}


SOLVERS = (*BUILTINS, "command", "openfoam", "attach")


@dataclass
class StreamConfig:
    """What runs (`solver`), the buffer it fills and how training draws from it.

    `solver`: a built-in solver (`ns2d` over the viscosity range, `gpme-heat|pme|stefan`,
    `cavity|tube|dam|cylinder`: `surrogate.online.builtin`), `command` (the user's executable,
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
    workdir: str = ""  # where commands run (default: the folder `surrogate online` starts in) and cases are copied (OUT_DIR/ensemble)
    n_simulations: int = 64
    resolution: int = 32  # built-in solvers: grid points per side (GPME: cells)
    dt: float = 0.0  # built-in solvers: the output interval (0: the solver's own, NS2D 0.25)
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
    advertise: str = ""  # the host name or IP solvers connect to (default: host; this machine's name when host is 0.0.0.0)
    curve_keys: str = ""  # a folder of CURVE keys (made when missing); needed when host is not 127.0.0.1
    buffer: str = "melissa"
    buffer_mb: float = 64.0
    watermark: int = 64
    seed: int = 0
    silent_s: float = 120.0  # a simulation silent this long is cancelled and resubmitted
    max_resubmits: int = 2
    timeout_s: float = 300.0  # training stops (on every rank) when no data came for this long
    steps_per_epoch: int = 50  # batches drawn from the buffer per epoch
    test_simulations: int = 6  # fresh simulations the trained model is rolled out on
    wait_for_all: bool = False  # after training, wait (up to timeout_s) until every launched simulation has finished

    def __post_init__(self) -> None:
        if self.buffer not in BUFFERS:
            raise InputError(f"stream.buffer {self.buffer!r}: expected one of {sorted(BUFFERS)}")
        if self.solver not in SOLVERS:
            raise InputError(f"stream.solver {self.solver!r}: expected one of {list(SOLVERS)}")
        if self.solver in BUILTINS:
            unknown = sorted(set(self.parameters) - set(BUILTINS[self.solver].space))
            if unknown:
                raise InputError(f"stream.parameters {unknown}: {self.solver} has the parameters {sorted(BUILTINS[self.solver].space)}")
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
        """Each parameter's sampling range: `parameters`, over a built-in solver's own ranges
        (NS2D's viscosity from viscosity_low and viscosity_high)."""
        given = {k: (float(lo), float(hi)) for k, (lo, hi) in self.parameters.items()}
        if self.solver == "ns2d":
            return {"viscosity": (self.viscosity_low, self.viscosity_high), **given}
        return {**BUILTINS[self.solver].space, **given} if self.solver in BUILTINS else given

    def step_dt(self) -> float:
        """A built-in solver's output interval."""
        return self.dt or (BUILTINS[self.solver].dt if self.solver in BUILTINS else 0.0)

    def schema(self) -> dict[str, Any]:
        """The data schema of the built-in NS2D stream (fixed by this configuration)."""
        return {
            "dataset_name": "ns2d-online",
            "channel_names": ["vorticity"],
            "param_names": ["viscosity"],
            "param_offset": [self.viscosity_low],
            "param_scale": [max(self.viscosity_high - self.viscosity_low, self.viscosity_low)],
            "space_shape": [self.resolution, self.resolution],
            "dt": self.step_dt(),
            "n_input": 1,
        }


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
        launched = cfg.solver not in ("ns2d", "attach") and self.rank == 0  # NS2D's held-out runs are made locally
        self.held_out_ids = [f"test-{cfg.seed}-{i}" for i in range(cfg.test_simulations)] if launched else []
        hold_first = cfg.test_simulations if cfg.solver == "attach" and self.rank == 0 else 0
        self.keys = load_or_create(cfg.curve_keys) if cfg.curve_keys else None
        self.server = StreamServer(
            BUFFERS[cfg.buffer](int(cfg.buffer_mb * 1e6), seed=cfg.seed + self.rank),
            host=cfg.host,
            hold_out=self.held_out_ids,
            hold_first=hold_first,
            port=cfg.port + 2 * self.rank if cfg.port else 0,
            curve=self.keys,
        )
        self.source = OnlineSource(self.server, batch_size // self.world_size, cfg.steps_per_epoch, cfg.watermark, timeout_s=cfg.timeout_s)
        self.launcher: Launcher | None = None
        self._others: list[str] = []  # the other ranks' control addresses
        self._stop = threading.Event()

    def __enter__(self) -> StreamSession:
        s = self.cfg
        self.server.__enter__()
        try:
            if self.resume is not None:  # every rank its own server's state
                self.source.load_state_dict(load_checkpoint(self.resume)["source"])
            finished = set().union(*gather(set(self.server.finished), self.world_size))
            addresses = gather(self.server.addresses(advertised_host(s.host, s.advertise)), self.world_size)
            if self.rank == 0:
                write_addresses(self.out_dir / "stream.json", addresses)
            if self.rank == 0 and s.solver != "attach":
                self.workdir.mkdir(parents=True, exist_ok=True)
                self.launcher = Launcher(s.scheduler, s.workers, s.jobqueue, s.jobqueue_options)
                ids = simulation_ids(s.solver, s.seed, s.n_simulations)
                train = list(zip(ids, sample_space(s.n_simulations, s.space(), s.sampler, s.seed)))
                held = list(zip(self.held_out_ids, sample_space(len(self.held_out_ids), s.space(), s.sampler, s.seed + 7919)))
                self.launcher.submit_ensemble(addresses, train, self._runner, finished)
                self.launcher.submit_ensemble(addresses[:1], held, self._runner, finished)  # rank 0 records the held-out ones
                self._others = [control for _, control in addresses[1:]]
                threading.Thread(target=self._watchdog, daemon=True).start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _runner(self, data: str, control: str, sim: str, params: dict[str, float], i: int) -> tuple[Any, ...]:
        """The function and arguments that run simulation `sim` in a worker."""
        s, keys = self.cfg, self.keys.client if self.keys is not None else None
        if s.solver in BUILTINS:
            return (run_builtin, data, control, sim, params, keys, s.solver, s.seed * 100_003 + i, s.resolution, s.step_dt(), s.n_steps)
        if s.solver == "command":
            cwd = Path(s.workdir).absolute() if s.workdir else Path.cwd()  # where `surrogate online` was started
            return (run_command, data, control, sim, params, keys, s.command, str(cwd))
        case = str(Path(s.case).absolute())
        return (run_openfoam, data, control, sim, params, keys, case, dict(s.dictionaries), list(s.fields), str(self.workdir), s.bashrc)

    def _watchdog(self) -> None:
        """Resubmit silent simulations, whichever rank's server they stream to (the other
        ranks' servers say when they last heard of each over their control sockets)."""
        assert self.launcher is not None
        ctx: Any = zmq.Context.instance()
        others = []
        for address in self._others:
            sock = ctx.socket(zmq.REQ)
            sock.setsockopt(zmq.RCVTIMEO, 5000)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.REQ_RELAXED, 1)  # a request that timed out does not block the next
            if self.keys is not None:
                self.keys.client.apply(sock)
            sock.connect(address)
            others.append(sock)
        try:
            while not self._stop.wait(1.0):
                with self.server.lock:
                    seen = dict(self.server.last_seen)
                now = time.monotonic()
                for sock in others:
                    try:
                        sock.send_json({"op": "status", "simulation_id": "launcher"})
                        ages = sock.recv_json().get("ages", {})
                    except zmq.ZMQError:  # that rank is busy or gone: ask again next time
                        continue
                    seen.update({sim: now - float(age) for sim, age in ages.items()})
                self.launcher.watch(seen, self.cfg.silent_s, self.cfg.max_resubmits)
        finally:
            for sock in others:
                sock.close(0)

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
        """The servers' and the launcher's counters (rank 0 gets every rank's under `ranks`),
        with `wait_for_all` once every launched simulation has finished."""
        if self.cfg.wait_for_all:
            if self.launcher is not None:
                from distributed import wait

                try:
                    wait([f for f in self.launcher.futures.values() if not f.cancelled()], timeout=self.cfg.timeout_s)
                except TimeoutError:
                    log.warning("not every simulation finished within stream.timeout_s %.0f s", self.cfg.timeout_s)
            gather(None, self.world_size)  # the other ranks count once rank 0 has seen the ensemble end
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


def advertised_host(host: str, advertise: str) -> str:
    """The host solvers connect to: `advertise`, else the bound interface, else (bound to every
    interface) this machine's name as the other machines know it."""
    if advertise:
        return advertise
    return socket.getfqdn() if host in ("0.0.0.0", "*", "::") else host


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
