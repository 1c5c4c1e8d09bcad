"""The mesh task: graph operators (graph transformer, MeshGraphNet) on unstructured meshes.

    mesh stores -> graph windows -> the one Trainer -> rollouts on the held-out data beside
    persistence -> report (metrics JSON, ParaView series)

or, with `data.source: stream` (`surrogate online`), an OpenFOAM case ensemble's stream
(`run_mesh_online`).

Held-out data: the last `data.test_trajectories` trajectories when the stores hold more than
one; with a single trajectory, its last `data.holdout_steps` transitions (and rollouts start
at the first held-out step). `holdout_steps: 0` trains on every transition of a single short
trajectory and evaluates in-sample (the report says so): for meshes with too few frames.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from surrogate.config import from_dict
from surrogate.datasets.atomic import atomic_dir
from surrogate.datasets.mesh_graph import NODE_TYPES, to_graph
from surrogate.datasets.mesh_store import MeshStore
from surrogate.errors import InputError
from surrogate.evaluation.mesh_stepper import MeshSurrogateStepper
from surrogate.evaluation.metrics import mesh_rollout_metrics, over_trajectories, per_sample_errors
from surrogate.evaluation.plots import error_vs_time, mesh_snapshots, triangles
from surrogate.evaluation.report import HtmlTable, write_index
from surrogate.evaluation.rollout import rollout
from surrogate.export.paraview import write_mesh_rollout
from surrogate.fields import MeshState
from surrogate.online.runners import openfoam_mesh
from surrogate.operators.mesh_surrogate import MeshSurrogate, predicted_nodes
from surrogate.operators.normalizer import Normalizer
from surrogate.operators.registry import MESH_OPERATORS, OPERATORS, build_operator
from surrogate.tasks.base import (
    ModelSpec,
    RolloutResult,
    TaskResult,
    Validator,
    checkpoint_meta,
    operator_params,
    run_info,
    spec_of,
    write_metrics,
)
from surrogate.training.checkpoint import load_checkpoint
from surrogate.training.mesh_stream import MAX_STATS_PAIRS, batch_statistics, held_out_store, mesh_collate, node_channels
from surrogate.training.stream import StreamConfig, StreamSession, write_stream_metrics
from surrogate.training.trainer import TrainConfig, train


@dataclass
class MeshDataConfig:
    """Mesh stores to train on; `noise_std` (a fraction of each field's std) is added to the
    predicted nodes' inputs in training, as MeshGraphNet does, so rollouts stay stable."""

    paths: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    batch_size: int = 2
    noise_std: float = 0.02
    test_trajectories: int = 1
    holdout_steps: int = 1
    source: str = "store"  # or "stream": the OpenFOAM ensemble of the `stream` section (`surrogate online`)

    def __post_init__(self) -> None:
        if self.source not in ("store", "stream"):
            raise InputError(f"data.source {self.source!r}: expected store or stream")


@dataclass
class MeshEvalConfig:
    rollout_steps: int = 50
    export: bool = True


@dataclass
class MeshExperimentConfig:
    data: MeshDataConfig = field(default_factory=MeshDataConfig)
    model: ModelSpec = field(default_factory=lambda: ModelSpec(name="graph_transformer"))
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: MeshEvalConfig = field(default_factory=MeshEvalConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    out_dir: str = "runs/mesh"


class MeshData:
    """The stores' trajectories, their graphs, and the train/test split of (store, traj, step)."""

    def __init__(self, cfg: MeshDataConfig, held_out: bool = False) -> None:
        """`held_out`: every trajectory is a test start (stores of held-out simulations only)."""
        if not cfg.paths:
            raise InputError("data.paths: name at least one mesh store (surrogate convert mesh ...)")
        self.stores = [MeshStore(p) for p in cfg.paths]
        self.channels = list(cfg.fields) or self.stores[0].channel_names
        self.graphs = [to_graph(s.points, s.cells, s.node_type) for s in self.stores]
        for s, g in zip(self.stores, self.graphs):
            if not bool(predicted_nodes(g.node_type).any()):
                counts = ", ".join(f"{int((s.node_type == k).sum())} {name}" for k, name in enumerate(NODE_TYPES))
                raise InputError(
                    f"{s.path}: nothing to predict: every node is prescribed ({counts}); a model predicts interior and "
                    "outflow nodes only. The node types of this store are wrong for training: convert the source again "
                    "(an OpenFOAM case gets them from its patches' boundary conditions; other files from the boundary and the flow)"
                )
        self.data = [[torch.from_numpy(s.read(b, self.channels)) for b in range(s.n_trajectories)] for s in self.stores]  # (T, N, C)
        trajs = [(i, b) for i, s in enumerate(self.stores) for b in range(s.n_trajectories)]
        dims = {s.points.shape[1] for s in self.stores}
        if len(dims) > 1:
            raise InputError(f"data.paths: stores mix {sorted(dims)}D meshes")
        if held_out:
            self.train_windows, self.test_starts = [], [(i, b, 0) for i, b in trajs]
        elif len(trajs) > 1:
            n_test = min(max(cfg.test_trajectories, 1), len(trajs) - 1)
            train, test = trajs[:-n_test], trajs[-n_test:]
            self.train_windows = [(i, b, t) for i, b in train for t in range(self.stores[i].n_steps - 1)]
            self.test_starts = [(i, b, 0) for i, b in test]
        else:
            (i, b), steps = trajs[0], self.stores[0].n_steps
            if not 0 <= cfg.holdout_steps < steps - 1:
                raise InputError(
                    f"data.holdout_steps {cfg.holdout_steps}: the one trajectory of {self.stores[0].path} has "
                    f"{steps} steps; expected 0 <= holdout_steps <= {steps - 2}"
                )
            first_test = steps - 1 - cfg.holdout_steps
            self.train_windows = [(i, b, t) for t in range(first_test)]
            self.test_starts = [(i, b, 0 if cfg.holdout_steps == 0 else first_test)]
        self.in_sample = not held_out and len(trajs) == 1 and cfg.holdout_steps == 0

    def window(self, key: tuple[int, int, int]) -> Data:
        i, b, t = key
        g = self.graphs[i].clone()
        g.u, g.target = self.data[i][b][t], self.data[i][b][t + 1]  # (N, C)
        return g

    def statistics(self) -> tuple[Tensor, Tensor, Tensor, Tensor, float]:
        """Field mean/std, increment mean/std over the predicted nodes, mean edge length (training data)."""
        us, deltas = [], []
        for i, b, t in self.train_windows:
            keep = predicted_nodes(self.graphs[i].node_type)
            us.append(self.data[i][b][t][keep])
            deltas.append((self.data[i][b][t + 1] - self.data[i][b][t])[keep])
        u, d = torch.cat(us).double(), torch.cat(deltas).double()
        edge = float(torch.cat([g.edge_attr[:, -1] for g in self.graphs]).mean())
        return u.mean(0), u.std(0).clamp_min(1e-8), d.mean(0), d.std(0).clamp_min(1e-8), edge


class MeshSource:
    """Shuffled batches of training windows as torch_geometric Batches; one iteration is one epoch."""

    def __init__(self, data: MeshData, batch_size: int, seed: int = 0) -> None:
        if len(data.train_windows) < batch_size:
            raise InputError(f"{len(data.train_windows)} training windows cannot fill one batch of {batch_size}")
        self.items = [data.window(k) for k in data.train_windows]  # built once, reshuffled every epoch
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        self.epoch += 1
        loader = DataLoader(self.items, batch_size=self.batch_size, shuffle=True, drop_last=True, generator=gen)
        return ({"graph": g} for g in loader)

    def __len__(self) -> int:
        return len(self.items) // self.batch_size

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])


class MeshLoss(nn.Module):
    """MSE of the normalized increment over the predicted nodes, with input noise on them."""

    def __init__(self, model: MeshSurrogate, noise_std: float) -> None:
        super().__init__()
        self.model, self.noise_std = model, noise_std

    def forward(self, batch: dict[str, Batch]) -> Tensor:
        g = batch["graph"]
        keep = predicted_nodes(g.node_type)
        noise = torch.randn_like(g.u) * self.noise_std * self.model.normalizer.std * keep[:, None]
        u = g.u + noise
        target = (g.target - u - self.model.delta_mean) / self.model.delta_std
        pred = self.model.forward_normalized(g, u)
        return (pred - target)[keep].square().mean()


def build_mesh_surrogate(spec: ModelSpec, schema: dict[str, Any], stats: tuple[Tensor, Tensor, Tensor, Tensor, float]) -> MeshSurrogate:
    c, d = len(schema["channel_names"]), schema["n_spatial_dims"]
    derived = {"in_channels": c + 4, "out_channels": c, "edge_channels": d + 1}
    if spec.name in OPERATORS and "edge_channels" not in {f.name for f in fields(OPERATORS[spec.name][0])}:
        del derived["edge_channels"]
    params = operator_params(spec, derived, "mesh", MESH_OPERATORS)
    mean, std, dmean, dstd, edge = stats
    normalizer = Normalizer(mean, std, 0, torch.zeros(0), torch.ones(0))
    return MeshSurrogate(build_operator(spec.name, params), normalizer, dmean, dstd, edge)


def one_step_validator(data: MeshData) -> Validator:
    """RMSE of one-step predictions on the held-out windows (the early-stopping metric)."""
    keys = [(i, b, t) for i, b, t0 in data.test_starts for t in range(t0, data.stores[i].n_steps - 1)]

    @torch.no_grad()
    def validate(model: MeshSurrogate) -> dict[str, float]:
        device = next(model.parameters()).device
        sq = []
        for k in keys:
            g = data.window(k).to(device)
            sq.append((model(g, g.u) - g.target).square().mean())
        return {"val": float(torch.stack(sq).mean().sqrt())}

    return validate


@dataclass
class MeshEvaluation:
    """Held-out rollouts of a mesh model beside persistence: summary metrics per stepper, the
    per-step quartiles over the held-out starts, and notes for the reader."""

    metrics: dict[str, dict[str, float]]
    results: dict[str, dict[str, np.ndarray]]
    times: np.ndarray
    notes: list[str]


def evaluate_mesh(model: MeshSurrogate, data: MeshData, n_steps: int, out: Path, export: bool, dt: float, name: str) -> MeshEvaluation:
    """Rollouts from each held-out start against the truth, for the model and persistence; the
    first start's rollout drawn on the mesh (2D) and written as a ParaView series."""
    if n_steps < 1:
        raise InputError(f"rollout steps {n_steps}: expected at least 1")
    per: dict[str, list[dict[str, float]]] = {name: [], "persistence": []}
    curves: dict[str, dict[str, list[np.ndarray]]] = {k: {"rel_l2": [], "rmse": []} for k in per}
    stepper = MeshSurrogateStepper(model, dt)
    lengths = []
    for j, (i, b, t0) in enumerate(data.test_starts):
        s = data.stores[i]
        steps = min(n_steps, s.n_steps - 1 - t0)
        lengths.append(steps)
        truth = data.data[i][b][t0 : t0 + steps + 1].permute(0, 2, 1)[None]  # (1, T, C, N)
        state = MeshState(truth[:, 0], torch.tensor([float(s.times[t0])]), data.graphs[i], tuple(data.channels))
        pred = rollout(stepper, state, steps).fields  # (1, T, C, N)
        for key, p in ((name, pred), ("persistence", truth[:, :1].expand_as(truth))):
            per[key].append(mesh_rollout_metrics(p, truth))
            for m, v in per_sample_errors(p[:, 1:], truth[:, 1:]).items():
                if m in curves[key]:
                    curves[key][m].append(v[0].numpy())
        if j == 0:
            times = [float(s.times[t0 + k]) for k in range(steps + 1)]
            if export:
                write_mesh_rollout(out / "paraview", s.points, s.cells, pred[0].numpy(), truth[0].numpy(), times, data.channels)
            tris = triangles(s.cells)
            if s.points.shape[1] == 2 and len(tris):
                shown = sorted({1, max(1, steps // 2), steps})
                where = f"trajectory {b} of {s.path.name}, from t = {times[0]:.4g}"
                fields = (pred[0].numpy(), truth[0].numpy())
                c = next((k for k, name in enumerate(data.channels) if name.endswith("_x")), 0)  # a velocity, when there is one
                mesh_snapshots(out / "snapshots.png", s.points, tris, *fields, data.channels[c], shown, times, where, c)
    longest = max(lengths)
    results = {
        key: over_trajectories({m: np.stack([np.pad(v, (0, longest - len(v)), constant_values=np.nan) for v in vs]) for m, vs in d.items()})
        for key, d in curves.items()
    }
    metrics = {key: {k: float(np.mean([m[k] for m in ms if k in m])) for k in ms[0]} for key, ms in per.items()}
    for summary in metrics.values():
        summary["in_sample"] = float(data.in_sample)
    notes = []
    if min(lengths) < n_steps:
        notes.append(
            f"{n_steps} rollout steps were asked; the held-out data hold {min(lengths)} step(s) after a rollout's start"
            + (f" (up to {longest})" if longest > min(lengths) else "")
            + "; data.holdout_steps or data.test_trajectories decide how much is held out"
        )
    if data.in_sample:
        notes.append("in-sample evaluation: data.holdout_steps 0 trains on every transition of the only trajectory")
    if s.points.shape[1] != 2:
        notes.append("a 3D mesh: the fields are in the ParaView series, not drawn here")
    return MeshEvaluation(metrics, results, np.arange(1, longest + 1) * dt, notes)


def mesh_metric_label(key: str) -> str:
    """'mse_10' -> 'MSE over steps 1-10', and the other metrics' names for people."""
    labels = {"rmse_1step": "RMSE, first step", "all_rollout_rmse": "RMSE over the rollout", "steps": "rollout steps"}
    labels["mse_1"] = "MSE, first step"
    return labels.get(key, f"MSE over steps 1-{key[4:]}" if key.startswith("mse_") else key)


MESH_CAPTIONS = {
    "error_vs_time.png": "Error against time since the rollout's start: the median over the held-out starts, the band "
    "their inter-quartile range; persistence repeats the start state.",
    "snapshots.png": "Truth, prediction and their difference on the mesh, at the first, middle and last rollout step "
    "of the first held-out start.",
}


def write_mesh_report(out: Path, ev: MeshEvaluation, checkpoint: Path, model: MeshSurrogate, data: MeshData, dt: float) -> None:
    """metrics.json, the error figure and index.html of a mesh evaluation into `out`."""
    write_metrics(out, ev.metrics)
    n_starts = len(data.test_starts)
    title = f"Rollout error on {n_starts} held-out start(s) of {', '.join(s.path.name for s in data.stores)}"
    label = "held-out start" if n_starts == 1 else "held-out starts"
    error_vs_time(out / "error_vs_time.png", ev.results, ev.times, f"time since the start (Δt = {dt:.4g})", title, n_starts, label)
    shown = [k for k in next(iter(ev.metrics.values())) if k != "in_sample"]
    header = ["model", *(mesh_metric_label(k) for k in shown)]
    table = HtmlTable("held-out rollouts", header, [[k, *(f"{m[x]:.4g}" for x in shown)] for k, m in ev.metrics.items()])
    info, config, warnings = run_info(checkpoint, model, ", ".join(str(s.path) for s in data.stores), f"{n_starts} held-out start(s)")
    write_index(out, f"{model_name(checkpoint)} rollouts", info, [table], MESH_CAPTIONS, ev.notes + warnings, config)


def model_name(checkpoint: Path) -> str:
    return str(load_checkpoint(checkpoint)["model"]["name"])


def run_mesh_train(cfg: MeshExperimentConfig, resume: str | Path | None = None, progress: bool = True) -> TaskResult:
    """Train the configured mesh model, then roll it out on the held-out data and report."""
    data = MeshData(cfg.data)
    schema: dict[str, Any] = {
        "channel_names": data.channels,
        "n_spatial_dims": int(data.stores[0].points.shape[1]),
        "dataset_name": data.stores[0].path.stem,
        "dt": data.stores[0].dt,
    }
    torch.manual_seed(cfg.train.seed)
    model = build_mesh_surrogate(cfg.model, schema, data.statistics())
    out = Path(cfg.out_dir)
    result = train(
        model,
        MeshSource(data, cfg.data.batch_size, cfg.train.seed),
        cfg.train,
        out,
        checkpoint_meta(cfg.model, schema, cfg),
        one_step_validator(data),
        resume,
        progress,
        loss=MeshLoss(model, cfg.data.noise_std),
    )
    best = load_mesh_surrogate(result.best_checkpoint)
    report = out / "report"
    with atomic_dir(report) as tmp:  # the report whole or not at all
        ev = evaluate_mesh(best, data, cfg.eval.rollout_steps, tmp, cfg.eval.export, schema["dt"], cfg.model.name)
        write_mesh_report(tmp, ev, result.best_checkpoint, best, data, schema["dt"])
    return TaskResult(result, report, ev.metrics, warnings=ev.notes)


def run_mesh_online(cfg: MeshExperimentConfig, resume: str | Path | None = None, progress: bool = True) -> TaskResult:
    """`surrogate online` with a mesh model (`data.source: stream`): an OpenFOAM case run as an
    ensemble streams into training, then the model is rolled out on the held-out simulations.

        template case -> meshed once here (the graph: points, cells, node types from its patches)
        ensemble (Dask) -> each case streams its time steps -> buffer -> graph batches -> Trainer
        held-out simulations -> a mesh store in a scratch folder -> rollouts beside persistence
    """
    s, out = cfg.stream, Path(cfg.out_dir)
    if s.solver != "openfoam":
        raise InputError(f"stream.solver {s.solver!r}: a mesh model streams from an OpenFOAM case ensemble (stream.solver openfoam)")
    with StreamSession(s, cfg.data.batch_size, resume, out) as session:
        mesh = openfoam_mesh(s.case, session.workdir / "mesh", s.bashrc)
        graph = to_graph(*mesh)
        channels, parts = node_channels(session.stream_schema(), cfg.data.fields or s.fields, graph.num_nodes)
        session.source.collate = mesh_collate(graph, parts)
        p, q = session.source.peek()
        dt = q.time - p.time
        schema = {"channel_names": channels, "n_spatial_dims": int(mesh[0].shape[1]), "dataset_name": "online", "dt": dt}
        torch.manual_seed(cfg.train.seed)
        first = session.source.collate(session.server.buffer_items()[:MAX_STATS_PAIRS])["graph"]
        model = build_mesh_surrogate(cfg.model, schema, batch_statistics(first, graph))
        meta, loss = checkpoint_meta(cfg.model, schema, cfg), MeshLoss(model, cfg.data.noise_std)
        result = train(model, session.source, cfg.train, out, meta, None, resume, progress, loss=loss)
        held = session.held_out()
        stream_metrics = session.metrics()
    best = load_mesh_surrogate(result.best_checkpoint)
    report = out / "report"
    with tempfile.TemporaryDirectory() as scratch, atomic_dir(report) as tmp:
        store = held_out_store(held, mesh, Path(scratch) / "held_out.h5")
        data = MeshData(MeshDataConfig(paths=[str(store)], fields=channels), held_out=True)
        ev = evaluate_mesh(best, data, cfg.eval.rollout_steps, tmp, cfg.eval.export, dt, cfg.model.name)
        write_mesh_report(tmp, ev, result.best_checkpoint, best, data, dt)
    write_stream_metrics(out, stream_metrics)
    return TaskResult(result, report, ev.metrics, warnings=ev.notes)


def run_mesh_rollout(checkpoint: str | Path, data: str | Path, n_steps: int, out_dir: str | Path) -> RolloutResult:
    """`surrogate rollout` of a mesh checkpoint on a mesh store: the held-out part of `data`
    chosen as in training (the checkpoint's data.holdout_steps / data.test_trajectories)."""
    ck = load_checkpoint(checkpoint)
    cfg = from_dict(MeshExperimentConfig, ck["experiment"], f"{checkpoint} (its experiment config)")
    channels = list(ck["data_schema"]["channel_names"])
    cfg.data.paths, cfg.data.fields = [str(data)], channels
    mesh_data = MeshData(cfg.data)
    model = load_mesh_surrogate(checkpoint)
    dt = mesh_data.stores[0].dt
    with atomic_dir(out_dir) as tmp:  # the report whole or not at all
        ev = evaluate_mesh(model, mesh_data, n_steps, tmp, True, dt, ck["model"]["name"])
        write_mesh_report(tmp, ev, Path(checkpoint), model, mesh_data, dt)
    return RolloutResult(Path(out_dir), metrics=ev.metrics, notes=ev.notes)


def load_mesh_surrogate(path: str | Path) -> MeshSurrogate:
    """A mesh surrogate rebuilt from its checkpoint alone."""
    ck = load_checkpoint(path)
    schema, sd = ck["data_schema"], ck["state_dict"]
    c = len(schema["channel_names"])
    stats = (torch.zeros(c), torch.ones(c), torch.zeros(c), torch.ones(c), 1.0)
    model = build_mesh_surrogate(spec_of(ck), schema, stats)
    model.load_state_dict(sd)
    return model.eval()


CONFIG = MeshExperimentConfig
run = run_mesh_train
load = load_mesh_surrogate
