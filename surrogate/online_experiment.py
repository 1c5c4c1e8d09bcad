"""`surrogate online`: train while solvers run. No dataset is written to disk for training.

    Dask ensemble of NS2D solvers -> ZeroMQ -> StreamServer buffer -> OnlineSource
        -> the same Trainer -> rollouts on held-out simulations beside persistence
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from surrogate.config import to_dict
from surrogate.datasets.store import GridStore
from surrogate.errors import InputError
from surrogate.experiment import ExperimentResult, ModelSpec, build_surrogate, evaluate_checkpoint_model, load_surrogate, run_local_ranks
from surrogate.generate import NS2DDataConfig, generate_ns2d
from surrogate.online.buffer import FIFOBuffer, FIROBuffer, ReservoirBuffer
from surrogate.online.launcher import Launcher, sample_parameters
from surrogate.online.server import StreamServer
from surrogate.online.source import OnlineSource
from surrogate.training.checkpoint import load_checkpoint
from surrogate.training.trainer import TrainConfig, train, world

BUFFERS = {"fifo": FIFOBuffer, "firo": FIROBuffer, "reservoir": ReservoirBuffer}


@dataclass
class StreamConfig:
    """The solver ensemble and the buffer it fills."""

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
    buffer: str = "reservoir"
    buffer_mb: float = 64.0
    watermark: int = 64
    seed: int = 0
    silent_s: float = 120.0  # a simulation silent this long is cancelled and resubmitted
    max_resubmits: int = 2
    timeout_s: float = 300.0  # training stops (on every rank) when no data came for this long


@dataclass
class OnlineConfig:
    stream: StreamConfig = field(default_factory=StreamConfig)
    model: ModelSpec = field(default_factory=lambda: ModelSpec("fno", {"n_modes": [12, 12], "hidden_channels": 16, "n_layers": 3}))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, lr=3e-3, patience=100))
    batch_size: int = 16
    steps_per_epoch: int = 50
    test_simulations: int = 6
    rollout_steps: int = 10
    out_dir: str = "runs/online"


def _gather(obj: Any, world_size: int) -> list[Any]:
    """obj from every rank, in rank order ([obj] without torch.distributed)."""
    if world_size == 1:
        return [obj]
    out: list[Any] = [None] * world_size
    dist.all_gather_object(out, obj)
    return out


def run_online_distributed(cfg: OnlineConfig, nproc: int, resume: str | Path | None = None, progress: bool = True) -> ExperimentResult:
    """`surrogate online --nproc N`: N local training processes (gloo), each with its own server."""
    if nproc < 1 or cfg.batch_size % nproc:
        raise InputError(f"--nproc {nproc}: expected >= 1 and dividing batch_size {cfg.batch_size}")
    if nproc == 1:
        result = run_online(cfg, resume, progress)
        assert result is not None
        return result
    return run_local_ranks(run_online, (cfg, resume), nproc, "cpu")


def _watchdog(launcher: Launcher, server: StreamServer, s: StreamConfig, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        with server.lock:
            seen = dict(server.last_seen)
        launcher.watch(seen, s.silent_s, s.max_resubmits)


def run_online(cfg: OnlineConfig, resume: str | Path | None = None, progress: bool = True) -> ExperimentResult | None:
    """Stream the ensemble into a buffer, train on it, evaluate on fresh simulations.

    `resume` (a `last.pt` of an earlier run) restores the model, optimizer and the stream
    server (buffer contents, steps seen, finished simulations): finished simulations are not
    rerun and steps already received are dropped when unfinished ones stream again.

    Under torch.distributed (`run_online_distributed`) every rank runs its own server and
    buffer; rank 0 launches the ensemble, simulation i streaming to rank i mod world size,
    and the ranks train one DDP model. Rank 0 evaluates and returns the result; the others
    return None. (Resuming restores rank 0's server; the silence watchdog sees rank 0's
    simulations.)"""
    s = cfg.stream
    if s.buffer not in BUFFERS:
        raise InputError(f"stream.buffer {s.buffer!r}: expected one of {sorted(BUFFERS)}")
    rank, world_size = world()
    out = Path(cfg.out_dir)
    viscosities = sample_parameters(s.n_simulations, s.viscosity_low, s.viscosity_high, s.sampler, s.seed)
    buffer = BUFFERS[s.buffer](int(s.buffer_mb * 1e6), seed=s.seed + rank)
    with StreamServer(buffer) as server:
        source = OnlineSource(server, cfg.batch_size // world_size, cfg.steps_per_epoch, s.watermark, ["vorticity"], ["viscosity"],
                              timeout_s=s.timeout_s)
        if resume is not None and rank == 0:
            source.load_state_dict(load_checkpoint(resume)["source"])
        addresses = _gather((server.data_address, server.control_address), world_size)
        launcher = Launcher(s.scheduler, s.workers, s.jobqueue, s.jobqueue_options) if rank == 0 else None
        stop = threading.Event()
        try:
            if launcher is not None:
                launcher.submit_ns2d([a for a, _ in addresses], [c for _, c in addresses], viscosities, s.seed, s.resolution, s.dt,
                                     s.n_steps, skip=set(server.finished))
                threading.Thread(target=_watchdog, args=(launcher, server, s, stop), daemon=True).start()
            first = source.batch()  # normalization from the first streamed batch (rank 0's, on every rank)
            mean, std = first["x"].mean().reshape(1).double(), first["x"].std().reshape(1).double()
            if world_size > 1:
                dist.broadcast(mean, 0)
                dist.broadcast(std, 0)
            scale = max(s.viscosity_high - s.viscosity_low, s.viscosity_low)
            schema = {
                "dataset_name": "ns2d-online",
                "channel_names": ["vorticity"],
                "param_names": ["viscosity"],
                "param_offset": [s.viscosity_low],
                "param_scale": [scale],
                "space_shape": [s.resolution, s.resolution],
                "dt": s.dt,
                "n_input": 1,
            }
            torch.manual_seed(cfg.train.seed)
            model = build_surrogate(cfg.model, schema, mean, std)
            meta = {"model": {"name": cfg.model.name, "config": to_dict(cfg.model)["params"]}, "data_schema": schema,
                    "experiment": to_dict(cfg)}
            result = train(model, source, cfg.train, out, meta, None, resume, progress and rank == 0)
            per_rank = _gather({**server.metrics(), "wait_fraction": source.wait_fraction}, world_size)
            stream_metrics = {**per_rank[0], "ranks": per_rank} if world_size > 1 else per_rank[0]
            if launcher is not None:
                stream_metrics.update(finished_tasks=launcher.finished(), skipped_finished=len(launcher.skipped),
                                      resubmitted=launcher.resubmitted)
        finally:
            stop.set()
            if launcher is not None:
                launcher.close()
    if rank != 0:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        test_cfg = NS2DDataConfig(s.resolution, max(cfg.test_simulations, 3), cfg.rollout_steps + 1, s.dt,
                                  viscosity=float(np.mean([s.viscosity_low, s.viscosity_high])), seed=s.seed + 10_007,
                                  valid_fraction=0.0, test_fraction=0.99)
        store = GridStore(generate_ns2d(test_cfg, Path(tmp) / "test.h5"))
        best, _ = load_surrogate(result.best_checkpoint)
        report, results, _ = evaluate_checkpoint_model(best, store, ["vorticity"], "test", cfg.rollout_steps, out / "report", cfg.model.name)
    (out / "stream_metrics.json").write_text(__import__("json").dumps(stream_metrics, indent=2, default=str))
    return ExperimentResult(result, report, results)
