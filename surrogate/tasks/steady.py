"""The steady task: steady fields over varying geometry (enf2enf, GINO, graph baseline).

    steady store -> point batches -> the one Trainer -> held-out geometries -> report

Training sees each training sample only through a fixed random subset of its points (a
fraction `data.train_points` of them: the "coarse mesh"); the geometry is encoded from
`n_geometry_points` of them plus points resampled on the obstacle's boundary (SDF 0), and
each batch asks for the fields at `n_queries` random points of the subset. Evaluation runs
on the last `test_fraction` of the samples (geometries never seen), at the training
resolution (the same fraction of their points) and on every point (zero-shot
super-resolution), and reports per field relative L2 errors beside those of the constant
training-mean field, the surface pressure error and the inference time per sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from surrogate.config import from_dict
from surrogate.datasets.atomic import atomic_dir
from surrogate.datasets.geometry import resample_ring, signed_distance
from surrogate.datasets.steady_store import SteadySample, SteadyStore
from surrogate.errors import InputError
from surrogate.evaluation.forces import force_coefficients
from surrogate.evaluation.plots import steady_fields
from surrogate.evaluation.report import HtmlTable, write_index
from surrogate.operators.normalizer import Normalizer
from surrogate.operators.registry import STEADY_OPERATORS, build_operator
from surrogate.tasks.base import ModelSpec, RolloutResult, TaskResult, checkpoint_meta, operator_params, run_info, spec_of, write_metrics
from surrogate.training.checkpoint import load_checkpoint
from surrogate.training.trainer import TrainConfig, train

RING_POINTS = 64


@dataclass
class SteadyDataConfig:
    path: str = ""
    test_fraction: float = 0.2
    train_points: float = 0.25
    n_geometry_points: int = 256
    n_queries: int = 512
    batch_size: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.test_fraction < 1 or not 0 < self.train_points <= 1:
            raise InputError(f"data: need 0 < test_fraction < 1 and 0 < train_points <= 1; got {self.test_fraction}, {self.train_points}")
        if min(self.n_geometry_points, self.n_queries, self.batch_size) < 1:
            raise InputError("data: n_geometry_points, n_queries and batch_size must be >= 1")


@dataclass
class SteadyExperimentConfig:
    data: SteadyDataConfig = field(default_factory=SteadyDataConfig)
    model: ModelSpec = field(default_factory=lambda: ModelSpec(name="enf2enf"))
    train: TrainConfig = field(default_factory=TrainConfig)
    out_dir: str = "runs/steady"


class SteadySurrogate(nn.Module):
    """A steady operator with its normalization: physical inputs in, physical fields out."""

    def __init__(self, operator: nn.Module, field_mean: Tensor, field_std: Tensor, param_mean: Tensor, param_std: Tensor) -> None:
        super().__init__()
        self.operator = operator
        self.normalizer = Normalizer(field_mean, field_std, 0, param_mean, param_std)  # fields (..., C), params (B, P)

    def forward_normalized(self, points: Tensor, sdf: Tensor, params: Tensor, queries: Tensor, query_sdf: Tensor) -> Tensor:
        return self.operator(points, sdf, self.normalizer.encode_params(params), queries, query_sdf)

    def forward(self, points: Tensor, sdf: Tensor, params: Tensor, queries: Tensor, query_sdf: Tensor) -> Tensor:
        return self.normalizer.decode(self.forward_normalized(points, sdf, params, queries, query_sdf))


def geometry_set(s: SteadySample, keep: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The points (S, d) and SDF (S,) that encode a sample's geometry: n of its kept points and
    points on its obstacle boundaries (SDF 0)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(keep, size=n, replace=len(keep) < n)
    pts, sdf = [s.points[idx]], [s.sdf[idx]]
    for ring in s.rings:
        pts.append(resample_ring(ring, RING_POINTS // max(len(s.rings), 1)))
        sdf.append(np.zeros(len(pts[-1])))
    return np.concatenate(pts), np.concatenate(sdf)


class SteadyData:
    """The store's samples, the held-out split, the training subsets and the geometry sets."""

    def __init__(self, cfg: SteadyDataConfig, seed: int = 0) -> None:
        self.store = SteadyStore(cfg.path)
        self.cfg = cfg
        n = len(self.store)
        if n < 2:
            raise InputError(f"{cfg.path}: {n} sample(s); need at least 2 to hold one geometry out")
        n_test = min(max(1, round(cfg.test_fraction * n)), n - 1)
        self.samples = [self.store.sample(k) for k in range(n)]
        if any(not s.rings for s in self.samples):
            raise InputError(f"{cfg.path}: every sample needs its obstacle boundary (rings) for the geometry encoding")
        self.train_ids, self.test_ids = list(range(n - n_test)), list(range(n - n_test, n))
        rng = np.random.default_rng(seed)
        # The coarse point set of every sample: training uses it, evaluation compares it with all points.
        self.coarse = [
            np.sort(rng.choice(len(s.points), max(1, round(cfg.train_points * len(s.points))), replace=False)) for s in self.samples
        ]
        self.geometry = [geometry_set(s, self.coarse[k], cfg.n_geometry_points, seed + k) for k, s in enumerate(self.samples)]
        points = np.concatenate([self.samples[k].points for k in range(n)])
        self.box = [float(v) for v in (*points.min(0), *points.max(0))]

    def schema(self) -> dict[str, Any]:
        s = self.store
        return {
            "field_names": s.field_names,
            "param_names": s.param_names,
            "n_spatial_dims": s.n_dims,
            "dataset_name": s.path.stem,
            "box": self.box,
        }

    def statistics(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        f = np.concatenate([self.samples[k].fields[self.coarse[k]] for k in self.train_ids]).astype(np.float64)
        p = np.stack([self.samples[k].params for k in self.train_ids]).astype(np.float64)
        t = lambda a: torch.from_numpy(a)  # noqa: E731
        return t(f.mean(0)), t(f.std(0).clip(1e-8)), t(p.mean(0)), t(p.std(0).clip(1e-8) if len(p) > 1 else np.ones(p.shape[1]))

    def inputs(self, k: int, idx: np.ndarray) -> dict[str, Tensor]:
        """One sample's model inputs and targets at its points `idx`, with a leading batch axis of 1."""
        s = self.samples[k]
        gp, gs = self.geometry[k]
        f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)[None]  # noqa: E731
        return {
            "points": f(gp),
            "sdf": f(gs),
            "params": f(s.params),
            "queries": f(s.points[idx]),
            "query_sdf": f(s.sdf[idx]),
            "target": f(s.fields[idx]),
        }


class SteadySource:
    """Shuffled batches of training samples, n_queries random points of each; one iteration is one epoch."""

    def __init__(self, data: SteadyData, seed: int = 0) -> None:
        if len(data.train_ids) < data.cfg.batch_size:
            raise InputError(f"{len(data.train_ids)} training samples cannot fill one batch of {data.cfg.batch_size}")
        self.data, self.seed, self.epoch = data, seed, 0

    def __iter__(self):
        rng = np.random.default_rng(self.seed * 100003 + self.epoch)
        self.epoch += 1
        order = rng.permutation(self.data.train_ids)
        bs = self.data.cfg.batch_size
        for start in range(0, len(order) - bs + 1, bs):
            items = [self.data.inputs(k, rng.choice(self.data.coarse[k], self.data.cfg.n_queries)) for k in order[start : start + bs]]
            yield {key: torch.cat([it[key] for it in items]) for key in items[0]}

    def __len__(self) -> int:
        return len(self.data.train_ids) // self.data.cfg.batch_size

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])


class SteadyLoss(nn.Module):
    """MSE of the normalized fields at the queried points, plus the operator's own
    regularization when it has one (enf2enf: its SDF reconstruction error)."""

    def __init__(self, model: SteadySurrogate) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        pred = self.model.forward_normalized(batch["points"], batch["sdf"], batch["params"], batch["queries"], batch["query_sdf"])
        loss = (pred - self.model.normalizer.encode(batch["target"])).square().mean()
        regularization = getattr(self.model.operator, "regularization", None)
        return loss + regularization() if regularization is not None else loss


def build_steady_surrogate(spec: ModelSpec, schema: dict[str, Any], stats: tuple[Tensor, Tensor, Tensor, Tensor]) -> SteadySurrogate:
    derived = {"n_dims": schema["n_spatial_dims"], "out_channels": len(schema["field_names"]), "n_params": len(schema["param_names"])}
    if spec.name == "gino":
        derived["box"] = schema["box"]
    elif "box" in spec.params:
        raise InputError("model.params: ['box'] is derived from the data; remove it from the config")
    params = operator_params(spec, derived, "steady", STEADY_OPERATORS)
    return SteadySurrogate(build_operator(spec.name, params), *stats)


@torch.no_grad()
def predict_sample(model: SteadySurrogate, data: SteadyData, k: int, idx: np.ndarray) -> tuple[Tensor, Tensor, float]:
    """(prediction (Q, C), truth (Q, C), seconds) for sample k at its points idx."""
    device = next(model.parameters()).device
    batch = {key: v.to(device) for key, v in data.inputs(k, idx).items()}
    start = time.perf_counter()
    pred = model(batch["points"], batch["sdf"], batch["params"], batch["queries"], batch["query_sdf"])[0]
    return pred.cpu(), batch["target"][0].cpu(), time.perf_counter() - start


def relative_l2(pred: Tensor, truth: Tensor) -> Tensor:
    """Per channel ||pred - truth|| / ||truth||, (C,)."""
    return (pred - truth).norm(dim=0) / truth.norm(dim=0).clamp_min(1e-12)


def force_metrics(forces: np.ndarray) -> dict[str, float]:
    """Errors of the pressure drag and lift coefficients, forces (S, 2 (pred, truth), 2 (C_D, C_L)):
    mean absolute error, and that divided by the mean absolute true value."""
    if len(forces) == 0:
        return {}
    out = {}
    for i, name in enumerate(("drag", "lift")):
        err = np.abs(forces[:, 0, i] - forces[:, 1, i])
        out[f"{name}_coefficient_abs_error"] = float(err.mean())
        out[f"{name}_coefficient_relative_error"] = float(err.mean() / max(np.abs(forces[:, 1, i]).mean(), 1e-12))
        out[f"{name}_coefficient_true_mean_abs"] = float(np.abs(forces[:, 1, i]).mean())
    return out


def evaluate_steady(model: SteadySurrogate, data: SteadyData) -> dict[str, Any]:
    """Held-out errors at the training resolution and on all points, surface pressure, the
    obstacle's pressure drag and lift coefficients (one obstacle per sample), timing."""
    model.eval()
    names = data.store.field_names
    full, coarse, constant, surface, seconds, forces = [], [], [], [], [], []
    for k in data.test_ids:
        s = data.samples[k]
        pred, truth, dt = predict_sample(model, data, k, np.arange(len(s.points)))
        full.append(relative_l2(pred, truth))
        constant.append(relative_l2(model.normalizer.mean.cpu().expand_as(truth), truth))
        seconds.append(dt)
        pc, tc, _ = predict_sample(model, data, k, data.coarse[k])
        coarse.append(relative_l2(pc, tc))
        if "p" in names and s.surface.any():
            c = names.index("p")
            m = torch.from_numpy(s.surface)
            surface.append(float(relative_l2(pred[m, c : c + 1], truth[m, c : c + 1])[0]))
            if len(s.rings) == 1 and "velocity" in data.store.param_names and s.points.shape[1] == 2:
                speed = float(s.params[data.store.param_names.index("velocity")])
                pts = s.points[s.surface.astype(bool)]
                forces.append([force_coefficients(s.rings[0], pts, v[m, c].numpy(), speed) for v in (pred, truth)])
    full_t, coarse_t, const_t = torch.stack(full).mean(0), torch.stack(coarse).mean(0), torch.stack(constant).mean(0)
    return {
        "held_out_samples": len(data.test_ids),
        "relative_l2": {n: float(v) for n, v in zip(names, full_t)},
        "relative_l2_mean": float(full_t.mean()),
        "relative_l2_train_resolution": {n: float(v) for n, v in zip(names, coarse_t)},
        "relative_l2_train_resolution_mean": float(coarse_t.mean()),
        "constant_mean_relative_l2": {n: float(v) for n, v in zip(names, const_t)},
        "constant_mean_relative_l2_mean": float(const_t.mean()),
        "surface_pressure_relative_l2": float(np.mean(surface)) if surface else float("nan"),
        **force_metrics(np.asarray(forces).reshape(-1, 2, 2)),
        "train_points_fraction": data.cfg.train_points,
        "points_per_sample_full": float(np.mean([len(data.samples[k].points) for k in data.test_ids])),
        "inference_s_per_sample": float(np.median(seconds)),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def run_steady_train(cfg: SteadyExperimentConfig, resume: str | Path | None = None, progress: bool = True) -> TaskResult:
    """Train the configured steady model, evaluate it on the held-out geometries, write the report."""
    data = SteadyData(cfg.data, cfg.train.seed)
    schema = data.schema()
    torch.manual_seed(cfg.train.seed)
    model = build_steady_surrogate(cfg.model, schema, data.statistics())
    meta = checkpoint_meta(cfg.model, schema, cfg)
    out = Path(cfg.out_dir)

    def validate(m: SteadySurrogate) -> dict[str, float]:
        """Held-out error at the training resolution only (the full-resolution pass is for the report)."""
        errors = [relative_l2(*predict_sample(m, data, k, data.coarse[k])[:2]) for k in data.test_ids]
        return {"val": float(torch.stack(errors).mean(0).mean())}

    result = train(model, SteadySource(data, cfg.train.seed), cfg.train, out, meta, validate, resume, progress, loss=SteadyLoss(model))
    best = load_steady_surrogate(result.best_checkpoint)
    metrics = {"model": cfg.model.name, **evaluate_steady(best, data), "train_s": result.train_s, "epochs": result.epochs_run}
    report = out / "report"
    with atomic_dir(report) as tmp:  # the report whole or not at all
        write_metrics(tmp, metrics)
        write_steady_report(tmp, metrics, best, data, result.best_checkpoint)
    return TaskResult(result, report, metrics)


STEADY_CAPTIONS = {
    "fields.png": "Truth, prediction and error of every field on the first held-out geometry (all its points); "
    "the last row: surface pressure along x on the obstacle, and predicted against true.",
}


def write_steady_report(out: Path, metrics: dict[str, Any], model: SteadySurrogate, data: SteadyData, checkpoint: Path) -> None:
    """The first held-out sample's fields and index.html (the relative L2 table beside the
    constant-mean baseline) into `out`."""
    k = data.test_ids[0]
    s = data.samples[k]
    pred, truth, _ = predict_sample(model, data, k, np.arange(len(s.points)))
    if s.points.shape[1] == 2:
        label = f"held-out sample {k} of {data.store.path.name}, parameters {dict(zip(data.store.param_names, s.params.round(4).tolist()))}"
        steady_fields(out / "fields.png", s.points, s.rings, pred.numpy(), truth.numpy(), data.store.field_names, s.surface, label)
    names = list(metrics["relative_l2"])
    rows = [
        [f"{metrics['model']}, training resolution ({data.cfg.train_points:.0%} of points)"]
        + [f"{metrics['relative_l2_train_resolution'][n]:.4f}" for n in names]
        + [f"{metrics['relative_l2_train_resolution_mean']:.4f}"],
        [f"{metrics['model']}, all points"] + [f"{metrics['relative_l2'][n]:.4f}" for n in names] + [f"{metrics['relative_l2_mean']:.4f}"],
        ["constant training mean"]
        + [f"{metrics['constant_mean_relative_l2'][n]:.4f}" for n in names]
        + [f"{metrics['constant_mean_relative_l2_mean']:.4f}"],
    ]
    table = HtmlTable(f"relative L2 error on {metrics['held_out_samples']} held-out geometries", ["", *names, "mean"], rows)
    surface = HtmlTable(
        "surface and timing",
        ["surface pressure relative L2", "drag coefficient error", "lift coefficient error", "inference per sample"],
        [
            [
                f"{metrics['surface_pressure_relative_l2']:.4f}",
                *(
                    f"{metrics[f'{k}_coefficient_abs_error']:.4f} ({metrics[f'{k}_coefficient_relative_error']:.1%})"
                    if f"{k}_coefficient_abs_error" in metrics
                    else "n/a"
                    for k in ("drag", "lift")
                ),
                f"{metrics['inference_s_per_sample'] * 1e3:.1f} ms",
            ]
        ],
    )
    info, config, warnings = run_info(checkpoint, model, str(data.store.path), f"{metrics['held_out_samples']} held-out geometries")
    write_index(out, f"{metrics['model']} on held-out geometries", info, [table, surface], STEADY_CAPTIONS, warnings, config)


def run_steady_rollout(checkpoint: str | Path, data: str | Path, out_dir: str | Path) -> RolloutResult:
    """`surrogate rollout` of a steady checkpoint on a steady store: its held-out geometries
    chosen as in training (the checkpoint's data.test_fraction), evaluated and reported."""
    ck = load_checkpoint(checkpoint)
    cfg = from_dict(SteadyExperimentConfig, ck["experiment"], f"{checkpoint} (its experiment config)")
    cfg.data.path = str(data)
    steady_data = SteadyData(cfg.data, cfg.train.seed)
    expected = list(ck["data_schema"]["field_names"])
    if list(steady_data.store.field_names) != expected:
        raise InputError(f"{data}: fields {steady_data.store.field_names}, but {checkpoint} was trained on {expected}")
    model = load_steady_surrogate(checkpoint)
    metrics = {"model": ck["model"]["name"], **evaluate_steady(model, steady_data)}
    with atomic_dir(out_dir) as tmp:  # the report whole or not at all
        write_metrics(tmp, metrics)
        write_steady_report(tmp, metrics, model, steady_data, Path(checkpoint))
    return RolloutResult(Path(out_dir), metrics=metrics)


def load_steady_surrogate(path: str | Path) -> SteadySurrogate:
    """A steady surrogate rebuilt from its checkpoint alone."""
    ck = load_checkpoint(path)
    schema = ck["data_schema"]
    c, p = len(schema["field_names"]), len(schema["param_names"])
    stats = (torch.zeros(c), torch.ones(c), torch.zeros(p), torch.ones(p))
    model = build_steady_surrogate(spec_of(ck), schema, stats)
    model.load_state_dict(ck["state_dict"])
    return model.eval()


def predict_at(
    model: SteadySurrogate, sample: SteadySample, queries: np.ndarray, n_geometry_points: int = 256, tol: float = 1e-9
) -> np.ndarray:
    """The fields (Q, C) at arbitrary points `queries` (Q, d) of a sample's domain.

    The queries must lie in the sample's domain: inside the box of its points and outside
    every obstacle (their SDF, computed from the boundary rings, must not be negative).
    """
    queries = np.asarray(queries, dtype=np.float64)
    if queries.ndim != 2 or queries.shape[1] != sample.points.shape[1]:
        raise InputError(f"queries of shape {queries.shape}; expected (Q, {sample.points.shape[1]})")
    if not sample.rings:
        raise InputError("the sample has no obstacle boundary (rings): the query SDF cannot be computed")
    lo, hi = sample.points.min(0), sample.points.max(0)
    span = float((hi - lo).max())
    outside = ((queries < lo - 0.05 * span) | (queries > hi + 0.05 * span)).any(1)
    q_sdf = signed_distance(queries, sample.rings, sample.walls)
    inside_body = q_sdf < -tol * span
    for mask, what in ((outside, f"outside the domain box {lo.tolist()}..{hi.tolist()}"), (inside_body, "inside an obstacle")):
        if mask.any():
            i = int(np.argmax(mask))
            raise InputError(f"{int(mask.sum())} query point(s) lie {what}; the first is #{i} at {queries[i].tolist()}")
    gp, gs = geometry_set(sample, np.arange(len(sample.points)), n_geometry_points, 0)
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)[None]  # noqa: E731
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(f(gp).to(device), f(gs).to(device), f(sample.params).to(device), f(queries).to(device), f(q_sdf).to(device))
    return out[0].cpu().numpy()


CONFIG = SteadyExperimentConfig
run = run_steady_train
load = load_steady_surrogate
