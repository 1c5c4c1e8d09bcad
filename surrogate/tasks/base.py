"""What every task shares: the model spec, the data-derived model parameters, the checkpoint
metadata, the validator's shape, the result and the report's metrics file.

A task (grid, mesh, steady) is a module with a config dataclass (`CONFIG`), the function
that trains and evaluates from it (`run`) and the one that rebuilds its model from a
checkpoint (`load`); `Task` names that protocol. It turns the raw steps its source yields
into samples, builds its model from the registry, trains it with the one Trainer and writes
its report. Tasks never import each other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from torch import nn

from surrogate.config import to_dict
from surrogate.datasets.atomic import atomic_path
from surrogate.errors import InputError
from surrogate.training.checkpoint import load_checkpoint
from surrogate.training.progress import minutes
from surrogate.training.trainer import SUMMARY_FILE, TrainResult

# A validator maps the model to metrics with key `val` (lower is better): the early-stopping metric.
Validator = Callable[[Any], dict[str, float]]


@dataclass
class ModelSpec:
    """An operator by registry name; `params` are its config fields except the data-derived ones."""

    name: str = "fno"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskResult:
    """What a training run produced: the Trainer's result, the report folder, and the held-out
    evaluation (`metrics`: summary numbers; `results`: per-step arrays of grid rollouts;
    `long_rollout`: the long-rollout statistics when asked for; `warnings`: the evaluation's
    notes for the reader, the training's own warnings being in `train.warnings`)."""

    train: TrainResult
    report_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    results: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    long_rollout: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class RolloutResult:
    """What `surrogate rollout` produced: the report folder, the per-step results (grid) or
    summary metrics (mesh, steady), the long-rollout statistics, and notes for the reader."""

    report_dir: Path
    results: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    long_rollout: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


class Task(Protocol):
    """The module-level protocol of `surrogate.tasks.grid`, `.mesh` and `.steady`."""

    CONFIG: type

    def run(self, cfg: Any, resume: str | Path | None = None, progress: bool = True) -> TaskResult | None: ...

    def load(self, path: str | Path) -> nn.Module: ...


def operator_params(spec: ModelSpec, derived: Mapping[str, Any], family: str, allowed: Sequence[str] | None = None) -> dict[str, Any]:
    """The operator's config: `spec.params` plus the fields the data decides (`derived`), which
    the user may not set; `allowed` restricts the model names to the task's family."""
    if allowed is not None and spec.name not in allowed:
        raise InputError(f"model.name {spec.name!r}: a {family} model is one of {list(allowed)}")
    clash = sorted(set(spec.params) & set(derived))
    if clash:
        raise InputError(f"model.params: {clash} are derived from the data; remove them from the config")
    return {**spec.params, **derived}


def checkpoint_meta(spec: ModelSpec, schema: dict[str, Any], cfg: Any) -> dict[str, Any]:
    """What every checkpoint carries besides the weights, so that the model is rebuilt from it alone."""
    return {"model": {"name": spec.name, "config": to_dict(spec)["params"]}, "data_schema": schema, "experiment": to_dict(cfg)}


def spec_of(checkpoint: Mapping[str, Any]) -> ModelSpec:
    """The model spec a checkpoint was trained with."""
    return ModelSpec(checkpoint["model"]["name"], dict(checkpoint["model"]["config"]))


def run_info(checkpoint: str | Path, model: nn.Module, data: str, split: str) -> tuple[dict[str, str], dict[str, Any], list[str]]:
    """What a report's header says of the run: (label -> value, the experiment config, the
    training warnings). The stop reason, time and device come from the training summary beside
    the checkpoint (`train_summary.json`), the rest from the checkpoint itself."""
    checkpoint = Path(checkpoint)
    ck = load_checkpoint(checkpoint)
    summary_path = checkpoint.parent / SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    n_params = sum(p.numel() for p in model.parameters())
    info = {
        "data": data,
        "evaluated on": split,
        "model": f"{ck['model']['name']} ({n_params:,} parameters)",
        "checkpoint": f"{checkpoint} (epoch {ck['epoch']}, step {ck['step']})",
        "training": f"{summary.get('epochs', ck['epoch'])} epochs, {summary.get('steps', ck['step'])} optimizer steps",
        "stopped": summary.get("stopped", "unknown (no training summary beside the checkpoint)"),
        "training time": minutes(float(summary.get("train_s", ck.get("train_time_s", 0.0)))),
        "device": summary.get("device", "unknown"),
        "best validation": f"{ck['best_val']:.4g}",
    }
    return info, dict(ck.get("experiment", {})), list(summary.get("warnings", []))


def write_metrics(report_dir: Path, metrics: Mapping[str, Any]) -> Path:
    """`report_dir/metrics.json`, written atomically."""
    with atomic_path(report_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, default=str))
    return report_dir / "metrics.json"
