"""Tasks: one per model family. `task_for(model name)` picks the one `surrogate train` runs.

grid    operators on regular grids (FNO, FactFormer, ...), from a store or a solver stream
mesh    graph operators on unstructured meshes (graph transformer, MeshGraphNet), from
        mesh stores or an OpenFOAM case ensemble's stream
steady  steady fields over varying geometry (enf2enf, GINO, graph baseline)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from surrogate.config import load_config, peek_model_name, raw_config
from surrogate.errors import InputError
from surrogate.operators.registry import MESH_OPERATORS, STEADY_OPERATORS
from surrogate.tasks import grid, mesh, steady
from surrogate.tasks.base import ModelSpec, RolloutResult, Task, TaskResult
from surrogate.training.checkpoint import load_checkpoint
from surrogate.training.lock import run_lock

TASKS: dict[str, ModuleType] = {"grid": grid, "mesh": mesh, "steady": steady}


def family_of(model_name: str | None) -> str:
    """The task family of a registry model name (grid for the grid operators and unknown names,
    so that the grid config reports the unknown name)."""
    if model_name in MESH_OPERATORS:
        return "mesh"
    if model_name in STEADY_OPERATORS:
        return "steady"
    return "grid"


def train_from_config(
    config: str | Path | None,
    overrides: list[str] | None = None,
    resume: str | Path | None = None,
    nproc: int = 1,
    progress: bool = True,
    stream: bool = False,
) -> TaskResult | None:
    """`surrogate train CONFIG` (and, with `stream`, `surrogate online CONFIG`): the task of the
    model's family on the source of `data.source`, holding the out_dir's lock (one run per
    folder). Returns None on a non-zero torchrun rank."""
    family = family_of(peek_model_name(config, overrides))
    run: Callable[[], TaskResult | None]
    cfg: Any
    if family != "grid":
        if stream and family != "mesh":
            raise InputError(f"{family} models train from stores; data.source stream is for grid and mesh models")
        if nproc > 1:
            raise InputError(f"--nproc: {family} models train in one process")
        task = TASKS[family]
        cfg = load_config(task.CONFIG, config, [*(overrides or []), *(["data.source=stream"] if stream else [])])
        online = family == "mesh" and cfg.data.source == "stream"
        run = partial(mesh.run_mesh_online if online else task.run, cfg, resume=resume, progress=progress)
    elif stream and not grid_config_keys(config, overrides):
        cfg = load_config(grid.OnlineConfig, config, overrides)
        run = partial(grid.run_online_distributed, cfg, nproc, resume, progress)
    else:
        cfg = load_config(grid.GridConfig, config, [*(overrides or []), *(["data.source=stream"] if stream else [])])
        run = partial(grid.run_train_distributed, cfg, nproc, resume) if nproc > 1 else partial(grid.run_train, cfg, resume, progress)
    if os.environ.get("RANK", "0") != "0":  # a torchrun rank other than 0: rank 0 holds the lock
        return run()
    with run_lock(cfg.out_dir):
        return run()


def rollout_checkpoint(
    checkpoint: str | Path, data: str | Path, split: str, n_steps: int, out_dir: str | Path, long_steps: int = 0, compile: bool = False
) -> RolloutResult:
    """`surrogate rollout`: the checkpoint's task evaluates it on `data` and writes the report.
    Grid models roll out on a store's split; mesh and steady models on the part of `data` their
    training config holds out (they have no splits, long rollouts or compilation here)."""
    family = family_of(load_checkpoint(checkpoint)["model"]["name"])
    if family == "grid":
        return grid.run_rollout(checkpoint, data, split, n_steps, out_dir, long_steps, compile)
    unsupported = [flag for flag, used in (("--split", split != "test"), ("--long-steps", long_steps != 0), ("--compile", compile)) if used]
    if unsupported:
        raise InputError(
            f"{checkpoint}: a {family} model; {unsupported} apply to grid models only "
            "(a mesh or steady store's held-out part is the one its training config chose)"
        )
    if family == "mesh":
        return mesh.run_mesh_rollout(checkpoint, data, n_steps, out_dir)
    return steady.run_steady_rollout(checkpoint, data, out_dir)


def grid_config_keys(config: str | Path | None, overrides: list[str] | None) -> bool:
    """Whether a config uses the grid task's sections (`data`, `eval`) rather than `surrogate
    online`'s short form (`batch_size`, `steps_per_epoch`, ... at the top level)."""
    return bool({"data", "eval"} & set(raw_config(config, overrides)[0]))


__all__ = [
    "TASKS",
    "ModelSpec",
    "RolloutResult",
    "Task",
    "TaskResult",
    "family_of",
    "grid",
    "mesh",
    "rollout_checkpoint",
    "steady",
    "train_from_config",
]
