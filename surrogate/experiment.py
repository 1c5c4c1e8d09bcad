"""The main jobs as importable functions: train-and-evaluate from a config, rollout a checkpoint.

    store -> offline source -> train -> best checkpoint -> rollouts on the test split
          -> report (metrics.json, error plot) beside the persistence baseline
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from surrogate.config import to_dict
from surrogate.datasets.stats import channel_stats
from surrogate.datasets.store import GridStore
from surrogate.datasets.windows import WindowDataset
from surrogate.errors import InputError
from surrogate.evaluation.evaluate import evaluate_rollouts, rollout_trajectory
from surrogate.evaluation.long_rollout import long_rollout_report
from surrogate.evaluation.plots import snapshots, spectra
from surrogate.evaluation.report import write_index, write_report
from surrogate.export.paraview import write_grid_rollout
from surrogate.export.xarray import rollout_dataset, write_netcdf
from surrogate.evaluation.surrogate_stepper import SurrogateStepper
from surrogate.operators.constraints.conserved_integrals import cell_volumes, volume_grid
from surrogate.operators.normalizer import Normalizer
from surrogate.operators.persistence import Persistence
from surrogate.operators.registry import build_operator
from surrogate.operators.surrogate import Surrogate
from surrogate.training.checkpoint import load_checkpoint
from surrogate.training.source import OfflineSource
from surrogate.training.trainer import TrainConfig, TrainResult, resolve_device, tensorboard_writer, train, world

DERIVED_KEYS = ("in_channels", "out_channels", "n_params")


@dataclass
class DataConfig:
    """Which store to train on and how to cut it into windows (k input -> m target steps)."""

    path: str = ""
    fields: list[str] = field(default_factory=list)
    n_input: int = 1
    n_target: int = 1
    batch_size: int = 16
    num_workers: int = 0
    conserve: list[str] = field(default_factory=list)  # channels whose domain integral each step keeps (e.g. a flow rate)


@dataclass
class ModelSpec:
    """An operator by registry name; `params` are its config fields except the data-derived ones."""

    name: str = "fno"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalConfig:
    """Rollout evaluation after training, and the validation rollouts during it."""

    split: str = "test"
    rollout_steps: int = 10
    val_rollout_steps: int = 5
    val_trajectories: int = 16
    long_rollout_steps: int = 0  # > 0: also a rollout this long past the stored truth (stability, channel statistics)


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    out_dir: str = "runs/experiment"


@dataclass
class ExperimentResult:
    train: TrainResult
    report_dir: Path
    results: dict[str, dict[str, np.ndarray]]
    long_rollout: dict[str, Any] | None = None


def data_schema(store: GridStore, channels: list[str], n_input: int, conserve: list[str] | None = None) -> dict[str, Any]:
    s = store.schema
    conserve = list(conserve or [])
    unknown = [c for c in conserve if c not in channels]
    if unknown:
        raise InputError(f"data.conserve: {unknown} are not among the trained channels {channels}")
    return {
        "conserve": conserve,
        "cell_volumes": cell_volumes(s.coords, s.boundary) if conserve else [],
        "dataset_name": s.dataset_name,
        "channel_names": list(channels),
        "param_names": list(s.param_names),
        "param_offset": list(s.param_offset),
        "param_scale": list(s.param_scale),
        "space_shape": list(s.space_shape),
        "dt": store.dt,
        "n_input": n_input,
    }


def build_surrogate(spec: ModelSpec, schema: dict[str, Any], mean: Any, std: Any) -> Surrogate:
    """The operator of `spec` sized for `schema`, wrapped with its normalizer."""
    clash = sorted(set(spec.params) & set(DERIVED_KEYS))
    if clash:
        raise InputError(f"model.params: {clash} are derived from the data; remove them from the config")
    c, k = len(schema["channel_names"]), schema["n_input"]
    params = {**spec.params, "in_channels": k * c, "out_channels": c, "n_params": len(schema["param_names"])}
    operator = build_operator(spec.name, params)
    normalizer = Normalizer(
        torch.as_tensor(mean),
        torch.as_tensor(std),
        len(schema["space_shape"]),
        torch.as_tensor(schema["param_offset"]),
        torch.as_tensor(schema["param_scale"]),
    )
    conserve = [schema["channel_names"].index(c) for c in schema.get("conserve", [])]
    volumes = volume_grid(schema["cell_volumes"]) if conserve else None
    return Surrogate(operator, normalizer, n_input=k, conserve=conserve, volumes=volumes)


def rollout_validator(store: GridStore, cfg: EvalConfig, n_input: int, channels: list[str]) -> Any:
    """Mean relative L2 of short rollouts on the valid split (the early-stopping metric)."""
    n_steps = min(cfg.val_rollout_steps, store.n_steps - n_input)
    if len(store.splits["valid"]) == 0 or n_steps < 1:
        return None

    def validate(model: Surrogate) -> dict[str, float]:
        stepper = SurrogateStepper(model, store.dt)
        errs = evaluate_rollouts(
            {"model": stepper}, store, "valid", n_steps, n_input, max_trajectories=cfg.val_trajectories, channels=channels
        )
        rel = errs["model"]["rel_l2"]
        return {"val": float(rel.mean()), "val_rel_l2_step1": float(rel[0]), "val_rel_l2_last": float(rel[-1])}

    return validate


def init_distributed_from_env(device: str) -> None:
    """Join the process group that torchrun describes in the environment (if any)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method="env://")


def run_train(cfg: ExperimentConfig, resume: str | Path | None = None, progress: bool = True) -> ExperimentResult | None:
    """Train the configured model on the configured store, then evaluate and report.

    Under torch.distributed (torchrun, or `run_train_distributed`) every rank trains on its
    shard of each global batch; rank 0 writes checkpoints and the report and returns the
    result, the other ranks return None.
    """
    init_distributed_from_env(cfg.train.device)
    rank, world_size = world()
    store = GridStore(cfg.data.path)
    channels = list(cfg.data.fields) or list(store.channel_names)
    store.require_fields(channels)
    train_set = WindowDataset(store, "train", cfg.data.n_input, cfg.data.n_target, channels)
    if len(train_set) == 0:
        raise InputError(f"{store.path}: the train split holds no windows")
    mean, std = channel_stats(store, "train")
    sel = [store.channel_names.index(c) for c in channels]
    schema = data_schema(store, channels, cfg.data.n_input, cfg.data.conserve)
    torch.manual_seed(cfg.train.seed)  # the initial weights are part of a reproducible run
    model = build_surrogate(cfg.model, schema, mean[sel], std[sel])
    source = OfflineSource(train_set, cfg.data.batch_size, cfg.train.seed, cfg.data.num_workers, rank, world_size)
    meta = {
        "model": {"name": cfg.model.name, "config": to_dict(cfg.model)["params"]},
        "data_schema": schema,
        "experiment": to_dict(cfg),
    }
    out = Path(cfg.out_dir)
    result = train(model, source, cfg.train, out, meta, rollout_validator(store, cfg.eval, cfg.data.n_input, channels), resume, progress)
    if rank != 0:
        return None
    best, _ = load_surrogate(result.best_checkpoint)
    report, results, long = evaluate_checkpoint_model(
        best, store, channels, cfg.eval.split, cfg.eval.rollout_steps, out / "report", cfg.model.name, cfg.eval.long_rollout_steps
    )
    board = tensorboard_writer(out, cfg.train.tensorboard)
    if board is not None:  # the report's figures beside the training curves
        import matplotlib.image

        for png in sorted(report.glob("*.png")):
            board.add_image(png.stem, matplotlib.image.imread(png)[..., :3], result.epochs_run, dataformats="HWC")
        board.close()
    return ExperimentResult(result, report, results, long)


def _rank_worker(rank: int, job: Callable[..., Any], args: tuple[Any, ...], device: str, world_size: int, port: int, queue: Any) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    init_distributed_from_env(device)
    try:
        result = job(*args, progress=rank == 0)
        if rank == 0:
            queue.put(result)
    finally:
        dist.destroy_process_group()


def run_local_ranks(job: Callable[..., Any], args: tuple[Any, ...], nproc: int, device: str = "auto") -> Any:
    """`job(*args, progress=...)` on `nproc` local processes joined in one process group (gloo on
    CPU, NCCL on GPUs), rendezvous on a free loopback port; returns rank 0's result."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    queue = torch.multiprocessing.get_context("spawn").SimpleQueue()
    torch.multiprocessing.start_processes(_rank_worker, (job, args, device, nproc, port, queue), nprocs=nproc, start_method="spawn")
    return queue.get()


def run_train_distributed(cfg: ExperimentConfig, nproc: int, resume: str | Path | None = None) -> ExperimentResult:
    """`surrogate train --nproc N`: N local processes (gloo on CPU, NCCL on GPUs) with DDP."""
    if nproc < 1:
        raise InputError(f"--nproc {nproc}: expected at least 1")
    if nproc == 1:
        result = run_train(cfg, resume)
        assert result is not None
        return result
    store = GridStore(cfg.data.path)
    n_train = len(store.splits["train"])
    if nproc > n_train:
        raise InputError(f"--nproc {nproc} is larger than the {n_train} training trajectories of {store.path}")
    if cfg.data.batch_size % nproc:
        raise InputError(f"data.batch_size {cfg.data.batch_size} (global) is not divisible by --nproc {nproc}")
    return run_local_ranks(run_train, (cfg, resume), nproc, cfg.train.device)


def load_surrogate(path: str | Path, expect_model: str | None = None) -> tuple[Surrogate, dict[str, Any]]:
    """Rebuild the surrogate stored in a checkpoint; returns it and the checkpoint's metadata."""
    ck = load_checkpoint(path, expect_model)
    schema = ck["data_schema"]
    spec = ModelSpec(ck["model"]["name"], {k: v for k, v in ck["model"]["config"].items()})
    model = build_surrogate(spec, schema, ck["normalizer"]["mean"], ck["normalizer"]["std"])
    try:
        model.load_state_dict(ck["state_dict"])
    except RuntimeError as e:
        raise InputError(f"{path}: weights do not fit model {spec.name!r}: {str(e)[:300]}") from None
    return model.eval(), ck


def check_compatible(store: GridStore, schema: dict[str, Any], source: str) -> None:
    """Fail unless `store` has the channels, parameters and grid the checkpoint was trained on."""
    store.require_fields(schema["channel_names"])
    if list(store.schema.param_names) != list(schema["param_names"]):
        raise InputError(f"{store.path}: parameters {list(store.schema.param_names)}, but {source} was trained with {schema['param_names']}")
    if abs(store.dt - schema["dt"]) > 1e-6 * max(1.0, abs(schema["dt"])):
        raise InputError(f"{store.path}: time step {store.dt}, but {source} was trained with dt={schema['dt']}")


def evaluate_checkpoint_model(
    model: Surrogate, store: GridStore, channels: list[str], split: str, n_steps: int, out_dir: Path, name: str, long_steps: int = 0
) -> tuple[Path, dict[str, dict[str, np.ndarray]], dict[str, Any] | None]:
    """Roll the model and the persistence baseline out on `split`; write the report. With
    `long_steps` > 0 the model is also rolled out that far past the stored truth
    (`long_rollout_report`: stability and, for channels, turbulence statistics)."""
    n_steps = min(n_steps, store.n_steps - model.n_input)
    baseline = Surrogate(Persistence(out_channels=len(channels)), model.normalizer, model.n_input)
    steppers = {"persistence": SurrogateStepper(baseline, store.dt), name: SurrogateStepper(model, store.dt)}
    results = evaluate_rollouts(steppers, store, split, n_steps, model.n_input, channels=channels)
    meta = {"data": str(store.path), "split": split, "n_trajectories": int(len(store.splits[split])), "model": name}
    report = write_report(out_dir, results, meta)
    write_trajectory_views(report, store, steppers[name], int(store.splits[split][0]), n_steps, model.n_input, channels)
    long = long_rollout_report(steppers[name], store, split, long_steps, model.n_input, channels, report, name=name) if long_steps > 0 else None
    write_index(report, results, meta)
    return report, results, long


def write_trajectory_views(
    out: Path, store: GridStore, stepper: SurrogateStepper, traj: int, n_steps: int, n_input: int, channels: list[str]
) -> None:
    """For one held-out trajectory: snapshots, spectra, a ParaView series and a netCDF file."""
    preds, truth, times = rollout_trajectory({"model": stepper}, store, traj, n_steps, n_input, channels)
    pred = preds["model"]
    steps = sorted({1, max(1, n_steps // 2), n_steps})
    snapshots(out / "snapshots.png", pred, truth, channels[0], steps)
    if len(store.schema.space_shape) <= 2:
        spectra(out / "spectra.png", pred, truth, channels[0], n_steps)
    mask = None if store.mask is None else store.mask[traj, 0]
    write_grid_rollout(out / "paraview", pred, truth, list(map(float, times)), channels, store.schema.coords, mask, f"trajectory{traj}")
    ds = rollout_dataset(pred[None], truth[None], times, channels, store.schema.coords, [traj], {"data": str(store.path)})
    write_netcdf(ds, out / f"trajectory{traj}.nc")


def run_rollout(
    checkpoint: str | Path, data: str | Path, split: str, n_steps: int, out_dir: str | Path, long_steps: int = 0
) -> tuple[Path, dict[str, dict[str, np.ndarray]], dict[str, Any] | None]:
    """`surrogate rollout`: a checkpoint against a store's split, beside persistence."""
    model, ck = load_surrogate(checkpoint)
    store = GridStore(data)
    check_compatible(store, ck["data_schema"], str(checkpoint))
    schema = ck["data_schema"]
    return evaluate_checkpoint_model(model, store, schema["channel_names"], split, n_steps, Path(out_dir), ck["model"]["name"], long_steps)
