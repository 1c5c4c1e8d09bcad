"""Tasks: one per model family. `task_for(model name)` picks the one `surrogate train` runs.

grid    operators on regular grids (FNO, FactFormer, ...), from a store or a solver stream
mesh    graph operators on unstructured meshes (graph transformer, MeshGraphNet)
steady  steady fields over varying geometry (enf2enf, GINO, graph baseline)
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from surrogate.config import load_config, peek_model_name, raw_config
from surrogate.errors import InputError
from surrogate.operators.registry import MESH_OPERATORS, STEADY_OPERATORS
from surrogate.tasks import grid, mesh, steady
from surrogate.tasks.base import ModelSpec, Task, TaskResult

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
    model's family on the source of `data.source`. Returns None on a non-zero torchrun rank."""
    family = family_of(peek_model_name(config, overrides))
    if family != "grid":
        if stream:
            raise InputError(f"{family} models train from stores; data.source stream is for grid models")
        if nproc > 1:
            raise InputError(f"--nproc: {family} models train in one process")
        task = TASKS[family]
        return task.run(load_config(task.CONFIG, config, overrides), resume=resume, progress=progress)
    if stream and not grid_config_keys(config, overrides):
        return grid.run_online_distributed(load_config(grid.OnlineConfig, config, overrides), nproc, resume, progress)
    cfg = load_config(grid.GridConfig, config, [*(overrides or []), *(["data.source=stream"] if stream else [])])
    if nproc > 1:
        return grid.run_train_distributed(cfg, nproc, resume)
    return grid.run_train(cfg, resume=resume, progress=progress)


def grid_config_keys(config: str | Path | None, overrides: list[str] | None) -> bool:
    """Whether a config uses the grid task's sections (`data`, `eval`) rather than `surrogate
    online`'s short form (`batch_size`, `steps_per_epoch`, ... at the top level)."""
    return bool({"data", "eval"} & set(raw_config(config, overrides)[0]))


__all__ = ["TASKS", "ModelSpec", "Task", "TaskResult", "family_of", "grid", "mesh", "steady", "train_from_config"]
