"""The grid task: operators on regular grids (FNO, FactFormer, ...) trained on windows of
k input -> m target steps, evaluated by rollouts beside persistence.

    source (store split | stream buffer) -> windows -> the one Trainer -> best checkpoint
          -> rollouts on held-out trajectories -> report (metrics.json, plots, ParaView, netCDF)

The source is chosen by `data.source`: `store` reads the windows of a store's train split
(validation rollouts on its valid split, evaluation on `eval.split`); `stream` launches the
solver ensemble of `stream` and draws (step -> step + 1) pairs from the server's buffer
(normalization from the first streamed batch, evaluation on fresh simulations).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from surrogate.datasets.atomic import atomic_dir
from surrogate.datasets.stats import channel_stats, static_stats
from surrogate.datasets.store import GridSchema, GridStore, GridStoreWriter
from surrogate.datasets.well_folder import open_grid_store
from surrogate.datasets.windows import WindowDataset
from surrogate.errors import InputError
from surrogate.evaluation.evaluate import evaluate_rollouts, rollout_trajectories
from surrogate.evaluation.long_rollout import long_rollout_report
from surrogate.evaluation.plots import snapshots, spectra
from surrogate.evaluation.probabilistic import one_step_scores, scores_table
from surrogate.evaluation.report import rollout_html_table, write_index, write_report
from surrogate.evaluation.surrogate_stepper import SurrogateStepper
from surrogate.export.paraview import write_grid_rollout
from surrogate.export.xarray import rollout_dataset, write_netcdf
from surrogate.generate.ns2d import NS2DDataConfig, generate_ns2d
from surrogate.online.protocol import StepMessage
from surrogate.online.server import StreamSchema
from surrogate.online.source import grid_collate
from surrogate.operators.constraints.conserved_integrals import cell_volumes, volume_grid
from surrogate.operators.normalizer import Normalizer
from surrogate.operators.persistence import Persistence
from surrogate.operators.probabilistic_surrogate import ProbabilisticSurrogate
from surrogate.operators.registry import GRID_OPERATORS, OPERATORS, PROBABILISTIC_OPERATORS, build_operator
from surrogate.operators.surrogate import Surrogate
from surrogate.tasks.base import ModelSpec, RolloutResult, TaskResult, Validator, checkpoint_meta, operator_params, run_info, spec_of
from surrogate.training.checkpoint import load_checkpoint
from surrogate.training.distributed import init_distributed_from_env, run_local_ranks
from surrogate.training.gaussian import GaussianRolloutLoss
from surrogate.training.source import OfflineSource
from surrogate.training.stream import StreamConfig, StreamSession, first_batch_stats, write_stream_metrics
from surrogate.training.trainer import TrainConfig, compile_operator, tensorboard_writer, train, world

SOURCES = ("store", "stream")


@dataclass
class DataConfig:
    """Where the raw steps come from (`source`: a store's train split, or the solver stream of
    the `stream` section) and how to cut them into windows (k input -> m target steps)."""

    path: str = ""
    fields: list[str] = field(default_factory=list)
    n_input: int = 1
    n_target: int = 1
    batch_size: int = 16
    num_workers: int = 0
    conserve: list[str] = field(default_factory=list)  # channels whose domain integral each step keeps (e.g. a flow rate)
    source: str = "store"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise InputError(f"data.source {self.source!r}: expected one of {list(SOURCES)}")


@dataclass
class EvalConfig:
    """Rollout evaluation after training, and the validation rollouts during it."""

    split: str = "test"
    rollout_steps: int = 10
    val_rollout_steps: int = 5
    val_trajectories: int = 16
    long_rollout_steps: int = 0  # > 0: also a rollout this long past the stored truth (stability, channel statistics)


@dataclass
class GridConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    out_dir: str = "runs/experiment"


CONFIG = GridConfig


@dataclass
class OnlineConfig:
    """`surrogate online`'s own config keys: the stream source's short form (`to_grid` gives the
    grid task's config with `data.source: stream`)."""

    stream: StreamConfig = field(default_factory=StreamConfig)
    model: ModelSpec = field(default_factory=lambda: ModelSpec("fno", {"n_modes": [12, 12], "hidden_channels": 16, "n_layers": 3}))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, lr=3e-3, patience=100))
    batch_size: int = 16
    steps_per_epoch: int = 50
    test_simulations: int = 6
    rollout_steps: int = 10
    out_dir: str = "runs/online"

    def to_grid(self) -> GridConfig:
        stream = StreamConfig(
            **{**self.stream.__dict__, "steps_per_epoch": self.steps_per_epoch, "test_simulations": self.test_simulations}
        )
        return GridConfig(
            data=DataConfig(batch_size=self.batch_size, source="stream"),
            model=self.model,
            train=self.train,
            eval=EvalConfig(rollout_steps=self.rollout_steps),
            stream=stream,
            out_dir=self.out_dir,
        )


def domain_lengths(coords: dict[str, np.ndarray], boundary: dict[str, str]) -> list[float]:
    """Each axis' length in physical units: n spacings on a periodic axis, first to last point otherwise."""
    out = []
    for d, c in coords.items():
        n, extent = len(c), float(c[-1] - c[0]) if len(c) > 1 else 1.0
        out.append(extent * n / (n - 1) if boundary.get(d) == "periodic" and n > 1 else extent)
    return out


def data_schema(store: GridStore, channels: list[str], n_input: int, conserve: list[str] | None = None) -> dict[str, Any]:
    s = store.schema
    conserve = list(conserve or [])
    unknown = [c for c in conserve if c not in channels]
    if unknown:
        raise InputError(f"data.conserve: {unknown} are not among the trained channels {channels}")
    static_mean, static_std = static_stats(store, "train")
    return {
        "conserve": conserve,
        "static_channels": list(s.static_channels),
        "static_mean": static_mean.tolist(),
        "static_std": static_std.tolist(),
        "cell_volumes": cell_volumes(s.coords, s.boundary) if conserve else [],
        "domain_lengths": domain_lengths(s.coords, s.boundary),
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
    c, k = len(schema["channel_names"]), schema["n_input"]
    n_static = len(schema.get("static_channels", []))
    derived: dict[str, Any] = {"in_channels": k * c + n_static, "out_channels": c, "n_params": len(schema["param_names"])}
    # what an operator's config declares of the input window and the domain's physical lengths
    optional = {"in_time_window": k, "lengths": schema.get("domain_lengths") or [1.0] * len(schema["space_shape"])}
    declared = {f.name for f in dataclass_fields(OPERATORS[spec.name][0])} if spec.name in OPERATORS else set()
    derived |= {key: value for key, value in optional.items() if key in declared}
    params = operator_params(spec, derived, "grid", GRID_OPERATORS + PROBABILISTIC_OPERATORS)
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
    static = (torch.as_tensor(schema["static_mean"]), torch.as_tensor(schema["static_std"])) if n_static else (None, None)
    # a probabilistic operator: a Gaussian next state, its conserved channels through ProbConserv
    kind = ProbabilisticSurrogate if spec.name in PROBABILISTIC_OPERATORS else Surrogate
    return kind(operator, normalizer, n_input=k, conserve=conserve, volumes=volumes, static_mean=static[0], static_std=static[1])


def rollout_validator(store: GridStore, cfg: EvalConfig, n_input: int, channels: list[str]) -> Validator | None:
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


@dataclass
class GridData:
    """What the grid task takes from its source: the schema, the normalization, the training
    batches, the validator, and the held-out store with the split to evaluate on."""

    schema: dict[str, Any]
    mean: Any
    std: Any
    batches: Any
    validator: Validator | None
    held_out: Callable[[Path], tuple[GridStore, str]]  # (scratch folder) -> (store, split): on rank 0 after training
    stream: StreamSession | None = None


@contextmanager
def open_source(cfg: GridConfig, resume: str | Path | None) -> Iterator[GridData]:
    """The grid task's view of `data.source`; a stream's solvers run while the context is open."""
    rank, world_size = world()
    if cfg.data.source == "store":
        store = open_grid_store(cfg.data.path)
        channels = list(cfg.data.fields) or list(store.channel_names)
        store.require_fields(channels)
        train_set = WindowDataset(store, "train", cfg.data.n_input, cfg.data.n_target, channels)
        if len(train_set) == 0:
            raise InputError(f"{store.path}: the train split holds no windows")
        mean, std = channel_stats(store, "train")
        sel = [store.channel_names.index(c) for c in channels]
        batches = OfflineSource(train_set, cfg.data.batch_size, cfg.train.seed, cfg.data.num_workers, rank, world_size)
        yield GridData(
            data_schema(store, channels, cfg.data.n_input, cfg.data.conserve),
            mean[sel],
            std[sel],
            batches,
            rollout_validator(store, cfg.eval, cfg.data.n_input, channels),
            lambda _: (store, cfg.eval.split),
        )
        return
    if (cfg.data.n_input, cfg.data.n_target) != (1, 1) or cfg.data.conserve:
        raise InputError("data.source stream: the stream yields (step -> step + 1) pairs; use n_input 1, n_target 1 and no conserve")
    s = cfg.stream
    held: dict[str, list[StepMessage]] = {}
    with StreamSession(s, cfg.data.batch_size, resume, cfg.out_dir) as session:
        if s.solver == "ns2d":
            if cfg.data.fields not in ([], ["vorticity"]):
                raise InputError(f"data.fields {cfg.data.fields}: the NS2D stream has the field vorticity only")
            schema, held_out = s.schema(), ns2d_held_out(s, cfg.eval.rollout_steps)
        else:
            schema = stream_grid_schema(session.stream_schema(), cfg.data.fields or s.fields, s.space(), session.source.peek())

            def held_out(scratch: Path) -> tuple[GridStore, str]:
                return GridStore(write_held_out(held, schema, scratch / "test.h5")), "test"

        session.source.collate = grid_collate(schema["channel_names"], schema["param_names"])
        yield GridData(schema, *first_batch_stats(session), session.source, None, held_out, session)
        if rank == 0 and s.solver != "ns2d":
            held.update(session.held_out())


def ns2d_held_out(s: StreamConfig, rollout_steps: int) -> Callable[[Path], tuple[GridStore, str]]:
    def held_out(scratch: Path) -> tuple[GridStore, str]:
        """Fresh simulations at the middle viscosity, never streamed."""
        test = NS2DDataConfig(
            s.resolution,
            max(s.test_simulations, 3),
            rollout_steps + 1,
            s.step_dt(),
            viscosity=float(np.mean([s.viscosity_low, s.viscosity_high])),
            seed=s.seed + 10_007,
            valid_fraction=0.0,
            test_fraction=0.99,
        )
        return GridStore(generate_ns2d(test, scratch / "test.h5")), "test"

    return held_out


def stream_grid_schema(
    stream: StreamSchema, fields: list[str], space: dict[str, tuple[float, float]], pair: tuple[StepMessage, StepMessage]
) -> dict[str, Any]:
    """The grid data schema of a stream fixed by its first message: every trained field on one
    grid (its shape the space shape), the parameters normalized by their sampling ranges (by
    offset 0, scale 1 when a parameter has none), dt from a streamed pair."""
    names = list(fields) or sorted(stream.fields)
    missing = [f for f in names if f not in stream.fields]
    if missing:
        raise InputError(f"data.fields {missing}: not among the streamed fields {sorted(stream.fields)}")
    shapes = {f: stream.fields[f][1] for f in names}
    if len(set(shapes.values())) != 1 or not next(iter(shapes.values())):
        raise InputError(f"the streamed fields {shapes} are not on one grid: a grid model needs every field of one shape (nx, ...)")
    low = [space.get(k, (0.0, 1.0))[0] for k in stream.parameters]
    scale = [max(space[k][1] - space[k][0], abs(space[k][0]), 1e-12) if k in space else 1.0 for k in stream.parameters]
    return {
        "dataset_name": "online",
        "channel_names": names,
        "param_names": list(stream.parameters),
        "param_offset": low,
        "param_scale": scale,
        "space_shape": list(next(iter(shapes.values()))),
        "dt": pair[1].time - pair[0].time,
        "n_input": 1,
    }


def write_held_out(trajectories: dict[str, list[StepMessage]], schema: dict[str, Any], path: Path) -> Path:
    """The held-out simulations as a store (its test split), cut to the shortest one."""
    runs = [steps for steps in trajectories.values() if len(steps) >= 2]
    if not runs:
        raise InputError("no held-out simulation streamed two steps: nothing to roll out on")
    t = min(len(r) for r in runs)
    names, shape = schema["channel_names"], schema["space_shape"]
    grid = GridSchema(
        dataset_name=schema["dataset_name"],
        time=np.arange(t) * schema["dt"],
        coords={d: np.arange(n) / n for d, n in zip("xyz", shape)},
        scalar_fields=tuple(names),
        param_names=tuple(schema["param_names"]),
        param_offset=tuple(schema["param_offset"]),
        param_scale=tuple(schema["param_scale"]),
    )
    with GridStoreWriter(path, grid, len(runs)) as w:
        fields = {n: np.stack([[m.fields[n] for m in r[:t]] for r in runs]).astype(np.float32) for n in names}  # (B, T, *space)
        params = np.array([[r[0].parameters[k] for k in schema["param_names"]] for r in runs], dtype=np.float32).reshape(len(runs), -1)
        w.write(0, fields, params)
        w.set_splits(train=[], valid=[], test=list(range(len(runs))))
    return path


def run_train(cfg: GridConfig, resume: str | Path | None = None, progress: bool = True) -> TaskResult | None:
    """Train the configured model on its source, then evaluate on held-out data and report.

    Under torch.distributed (torchrun, or `run_train_distributed`) every rank trains on its
    shard of each global batch (a stream: from its own server); rank 0 writes checkpoints and
    the report and returns the result, the other ranks return None.
    """
    init_distributed_from_env(cfg.train.device)
    rank, _ = world()
    out = Path(cfg.out_dir)
    with open_source(cfg, resume) as data:
        torch.manual_seed(cfg.train.seed)  # the initial weights are part of a reproducible run
        model = build_surrogate(cfg.model, data.schema, data.mean, data.std)
        loss = GaussianRolloutLoss(model, cfg.train.input_noise) if isinstance(model, ProbabilisticSurrogate) else None
        meta = checkpoint_meta(cfg.model, data.schema, cfg)
        result = train(model, data.batches, cfg.train, out, meta, data.validator, resume, progress, loss=loss)
        stream_metrics = data.stream.metrics() if data.stream is not None else None
    if rank != 0:
        return None
    best, _ = load_surrogate(result.best_checkpoint)
    if cfg.train.compile:
        compile_operator(best)
    with tempfile.TemporaryDirectory() as scratch:
        store, split = data.held_out(Path(scratch))
        report, results, long, notes = evaluate_checkpoint_model(
            best,
            store,
            data.schema["channel_names"],
            split,
            cfg.eval.rollout_steps,
            out / "report",
            cfg.model.name,
            result.best_checkpoint,
            cfg.eval.long_rollout_steps,
        )
    if stream_metrics is not None:
        write_stream_metrics(out, stream_metrics)
    board = tensorboard_writer(out, cfg.train.tensorboard)
    if board is not None:  # the report's figures beside the training curves
        import matplotlib.image

        for png in sorted(report.glob("*.png")):
            board.add_image(png.stem, matplotlib.image.imread(png)[..., :3], result.epochs_run, dataformats="HWC")
        board.close()
    return TaskResult(result, report, results=results, long_rollout=long, warnings=notes)


def run_train_distributed(cfg: GridConfig, nproc: int, resume: str | Path | None = None) -> TaskResult:
    """`surrogate train --nproc N`: N local processes (gloo on CPU, NCCL on GPUs) with DDP."""
    if nproc < 1:
        raise InputError(f"--nproc {nproc}: expected at least 1")
    if nproc == 1:
        result = run_train(cfg, resume)
        assert result is not None
        return result
    device = cfg.train.device
    if cfg.data.source == "store":
        store = open_grid_store(cfg.data.path)
        n_train = len(store.splits["train"])
        if nproc > n_train:
            raise InputError(f"--nproc {nproc} is larger than the {n_train} training trajectories of {store.path}")
    else:
        device = "cpu"  # each rank's stream server and the gloo group live on the host
    if cfg.data.batch_size % nproc:
        raise InputError(f"data.batch_size {cfg.data.batch_size} (global) is not divisible by --nproc {nproc}")
    return run_local_ranks(run_train, (cfg, resume), nproc, device)


def run_online(cfg: OnlineConfig, resume: str | Path | None = None, progress: bool = True) -> TaskResult | None:
    """`surrogate online CONFIG`: the grid task with `data.source: stream`."""
    return run_train(cfg.to_grid(), resume, progress)


def run_online_distributed(cfg: OnlineConfig, nproc: int, resume: str | Path | None = None, progress: bool = True) -> TaskResult:
    """`surrogate online --nproc N`: N local training processes (gloo), each with its own server."""
    if nproc == 1:
        result = run_online(cfg, resume, progress)
        assert result is not None
        return result
    return run_train_distributed(cfg.to_grid(), nproc, resume)


def load_surrogate(path: str | Path, expect_model: str | None = None) -> tuple[Surrogate, dict[str, Any]]:
    """Rebuild the surrogate stored in a checkpoint; returns it and the checkpoint's metadata."""
    ck = load_checkpoint(path, expect_model)
    schema = ck["data_schema"]
    spec = spec_of(ck)
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
        raise InputError(
            f"{store.path}: parameters {list(store.schema.param_names)}, but {source} was trained with {schema['param_names']}"
        )
    if list(store.schema.static_channels) != list(schema.get("static_channels", [])):
        raise InputError(
            f"{store.path}: static inputs {list(store.schema.static_channels)}, but {source} was trained with "
            f"{schema.get('static_channels', [])}"
        )
    if abs(store.dt - schema["dt"]) > 1e-6 * max(1.0, abs(schema["dt"])):
        raise InputError(f"{store.path}: time step {store.dt}, but {source} was trained with dt={schema['dt']}")


def rollout_length(store: GridStore, split: str, n_steps: int, n_input: int) -> tuple[int, list[str]]:
    """The rollout steps the store's `split` allows for `n_steps` asked, and the note to show
    when that is fewer; bad requests fail before anything is written."""
    if split not in store.splits:
        raise InputError(f"split {split!r}: expected one of {list(store.splits)} ({store.path})")
    if len(store.splits[split]) == 0:
        raise InputError(f"{store.path}: split {split!r} has no trajectories to roll out")
    if n_steps < 1:
        raise InputError(f"rollout steps {n_steps}: expected at least 1")
    available = store.n_steps - n_input
    if available < 1:
        raise InputError(f"{store.path}: {store.n_steps} stored steps leave nothing to roll out after {n_input} input step(s)")
    if n_steps <= available:
        return n_steps, []
    note = f"{n_steps} rollout steps were asked; the store holds {available} after the {n_input} input step(s), so {available} were run"
    return available, [note]


def evaluate_checkpoint_model(
    model: Surrogate,
    store: GridStore,
    channels: list[str],
    split: str,
    n_steps: int,
    out_dir: Path,
    name: str,
    checkpoint: str | Path,
    long_steps: int = 0,
) -> tuple[Path, dict[str, dict[str, np.ndarray]], dict[str, Any] | None, list[str]]:
    """Roll the model and the persistence baseline out on `split`; write the report (whole or
    not at all). With `long_steps` > 0 the model is also rolled out that far past the stored
    truth (`long_rollout_report`: stability and, for channels, turbulence statistics).

    Returns (report folder, per-step results, long-rollout statistics, notes for the reader).
    """
    if long_steps < 0:
        raise InputError(f"long rollout steps {long_steps}: expected 0 (none) or more")
    n_steps, notes = rollout_length(store, split, n_steps, model.n_input)
    baseline = Surrogate(Persistence(out_channels=len(channels)), model.normalizer, model.n_input)
    steppers = {"persistence": SurrogateStepper(baseline, store.dt), name: SurrogateStepper(model, store.dt)}
    results = evaluate_rollouts(steppers, store, split, n_steps, model.n_input, channels=channels)
    n_traj = int(len(store.splits[split]))
    times = np.asarray(store.schema.time[model.n_input : model.n_input + n_steps], dtype=float)
    meta: dict[str, Any] = {"data": str(store.path), "split": split, "n_trajectories": n_traj, "model": name}
    tables = [rollout_html_table(results, times)]
    if isinstance(model, ProbabilisticSurrogate):  # the Gaussian's own scores, with and without ProbConserv
        meta["one_step_gaussian"] = one_step_scores(model, store, split, channels)
        tables.append(scores_table(meta["one_step_gaussian"]))
    info, config, warnings = run_info(checkpoint, model, str(store.path), f"{split} split, {n_traj} trajectories")
    with atomic_dir(out_dir) as tmp:
        write_report(tmp, results, meta, times, f"time (Δt = {store.dt:.4g} per rollout step, store units)")
        write_trajectory_views(tmp, store, steppers[name], store.splits[split], n_steps, model.n_input, channels)
        long = (
            long_rollout_report(steppers[name], store, split, long_steps, model.n_input, channels, tmp, name=name)
            if long_steps > 0
            else None
        )
        write_index(
            tmp,
            f"{name} rollouts on {store.path.name}",
            info,
            tables,
            CAPTIONS,
            notes + warnings,
            config,
        )
    return Path(out_dir), results, long, notes


CAPTIONS = {
    "error_vs_time.png": "Error against physical time: the line is the median over the held-out trajectories, the band the "
    "inter-quartile range; persistence (the last input state, repeated) is the baseline a model must beat.",
    "snapshots.png": "Truth, prediction and their difference on the first held-out trajectory at the first, middle and last rollout step.",
    "spectra.png": "Spectra at the last rollout step, averaged over up to 8 held-out trajectories and divided by the truth's "
    "total: the dashed error spectrum shows at which scales the prediction departs from the truth.",
}
VIEW_TRAJECTORIES = 8  # held-out trajectories rolled out for the spectra and the netCDF file


def write_trajectory_views(
    out: Path, store: GridStore, stepper: SurrogateStepper, trajs: np.ndarray, n_steps: int, n_input: int, channels: list[str]
) -> None:
    """For up to VIEW_TRAJECTORIES held-out trajectories: snapshots and a ParaView series of the
    first, spectra averaged over all, and a netCDF file of every rollout (`rollout.nc`)."""
    chosen = [int(t) for t in trajs[:VIEW_TRAJECTORIES]]
    preds, truth, times = rollout_trajectories({"model": stepper}, store, chosen, n_steps, n_input, channels)
    pred = preds["model"]
    coords = store.schema.coords
    steps = sorted({1, max(1, n_steps // 2), n_steps})
    label = f"trajectory {chosen[0]} of {store.path.name}"
    snapshots(out / "snapshots.png", pred[0], truth[0], channels[0], steps, list(times), coords, label)
    if len(store.schema.space_shape) <= 2:
        spectra(out / "spectra.png", pred[:, -1], truth[:, -1], channels[0], float(times[-1]))
    mask = None if store.mask is None else store.mask[chosen[0], 0]
    write_grid_rollout(out / "paraview", pred[0], truth[0], list(map(float, times)), channels, coords, mask, f"trajectory{chosen[0]}")
    ds = rollout_dataset(pred, truth, times, channels, coords, chosen, {"data": str(store.path)})
    write_netcdf(ds, out / "rollout.nc")


def run_rollout(
    checkpoint: str | Path, data: str | Path, split: str, n_steps: int, out_dir: str | Path, long_steps: int = 0, compile: bool = False
) -> RolloutResult:
    """`surrogate rollout` of a grid checkpoint against a store's split, beside persistence
    (`compile`: torch.compile the operator first)."""
    model, ck = load_surrogate(checkpoint)
    if compile:
        compile_operator(model)
    store = open_grid_store(data)
    check_compatible(store, ck["data_schema"], str(checkpoint))
    schema = ck["data_schema"]
    report, results, long, notes = evaluate_checkpoint_model(
        model, store, schema["channel_names"], split, n_steps, Path(out_dir), ck["model"]["name"], checkpoint, long_steps
    )
    return RolloutResult(report, results=results, long_rollout=long, notes=notes)


def load(path: str | Path) -> Surrogate:
    """The grid surrogate of a checkpoint (the task protocol's loader)."""
    return load_surrogate(path)[0]


run = run_train
