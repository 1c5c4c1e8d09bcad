"""`surrogate generate cfdbench`: a parameter sweep of one CFDBench problem, run on Dask.

Each case runs as one Dask task (a LocalCluster of processes by default, or the scheduler
the user names); a failed case is retried once, then reported, never dropped silently.
Results are written both in CFDBench's own layout (`<out>/<problem>/<subset>/caseNNNN/
{u.npy, v.npy, case.json}`, frames 0.1 s apart on 64 x 64) and as the canonical store.

The sweeps vary the subset's parameters on a regular grid, as CFDBench does, around a base
case. The ranges are ours: inside CFDBench's normalization ranges and limited to what the
solver resolves on its grid (cell Reynolds number <= 10), which is checked before running.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from surrogate.datasets.cfdbench import convert_cfdbench
from surrogate.errors import InputError
from surrogate.online.local_cluster import local_cluster
from surrogate.solvers.cfdbench_problems import BASE, BC_KEY, FRAME_DT, GEO, PROBLEMS, cells_needed, check_resolvable, domain


def sweep(problem: str, subset: str, n_values: int) -> list[dict[str, float]]:
    """The cases of one subset: a regular grid over its parameters around the base case."""
    if problem not in PROBLEMS:
        raise InputError(f"--problem {problem!r}: expected one of {PROBLEMS}")
    ranges = {
        "prop": {"density": (0.5, 2.0), "viscosity": (BASE[problem]["viscosity"] * 0.5, BASE[problem]["viscosity"] * 2)},
        "bc": {BC_KEY[problem]: (0.5, 2.0)},
        "geo": GEO[problem],
    }
    if subset not in ranges:
        raise InputError(f"--subset {subset!r}: expected prop, bc or geo")
    axes = {k: np.linspace(lo, hi, n_values) for k, (lo, hi) in ranges[subset].items()}
    return [{**BASE[problem], **dict(zip(axes, map(float, combo)))} for combo in itertools.product(*axes.values())]


def run_case(problem: str, case: dict[str, float], resolution: int, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """One simulation (runs in a Dask worker): u, v as (T, 64, 64) float32 arrays."""
    import torch

    from surrogate.solvers.cfdbench_problems import frames, setup

    torch.set_num_threads(1)  # one case per worker process
    solver, state = setup(problem, case, resolution, FRAME_DT)
    u, v = frames(solver, state, n_frames)
    return u.float().numpy(), v.float().numpy()


@dataclass
class CFDBenchGenConfig:
    problem: str = "cavity"
    subset: str = "prop"
    n_values: int = 5
    resolution: int = 0  # 0: the smallest multiple of 64 that resolves every case of the sweep
    n_frames: int = 50
    scheduler: str = ""
    n_workers: int = 2


@dataclass
class CFDBenchGenResult:
    folder: Path
    store: Path
    written: int
    failed: list[tuple[int, str]] = field(default_factory=list)
    resolution: int = 64


def _write_case(folder: Path, u: np.ndarray, v: np.ndarray, case: dict[str, float]) -> None:
    """caseNNNN written under a temporary name and renamed when complete."""
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "u.npy", u)
    np.save(tmp / "v.npy", v)
    if "barrier_height" in case:  # the dam: CFDBench's loader reads the grid spacing from case.json
        case = {**case, "dx": case["width"] / u.shape[2], "dy": case["height"] / u.shape[1]}
    (tmp / "case.json").write_text(json.dumps(case, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def resolution_for(problem: str, cases: list[dict[str, float]]) -> int:
    """The smallest multiple of 64 (CFDBench's grid) that resolves every case."""
    return max(64, *(-(-cells_needed(problem, c) // 64) * 64 for c in cases))


def generate_cfdbench(
    cfg: CFDBenchGenConfig, out_dir: str | Path, store: str | Path, on_case: Callable[[int, bool], None] | None = None
) -> CFDBenchGenResult:
    """Run the sweep on Dask, write CFDBench folders under `out_dir` and the store `store`."""
    from dask.distributed import Client, as_completed

    if cfg.resolution % 64 or cfg.resolution < 0:
        raise InputError(f"--resolution {cfg.resolution}: must be a multiple of 64 (CFDBench's grid), or 0 to choose one")
    if cfg.n_frames < 2 or cfg.n_values < 1:
        raise InputError("need --n-frames >= 2 and --n-values >= 1")
    cases = sweep(cfg.problem, cfg.subset, cfg.n_values)
    cfg = replace(cfg, resolution=cfg.resolution or resolution_for(cfg.problem, cases))
    for case in cases:  # every case is checked before anything runs
        check_resolvable(cfg.problem, case, cfg.resolution, cfg.resolution, multiple=64)
        domain(cfg.problem, case)
    folder = Path(out_dir) / cfg.problem / cfg.subset
    if folder.is_dir() and any(folder.glob("case*")):
        raise InputError(f"{folder} already holds cases; choose another output folder or remove them first")
    folder.mkdir(parents=True, exist_ok=True)
    result = CFDBenchGenResult(Path(out_dir) / cfg.problem, Path(store), 0, resolution=cfg.resolution)
    cluster = None if cfg.scheduler else local_cluster(cfg.n_workers)
    with Client(cfg.scheduler or cluster) as client:
        futures = {
            client.submit(run_case, cfg.problem, case, cfg.resolution, cfg.n_frames, retries=1, pure=False): i
            for i, case in enumerate(cases)
        }
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                u, v = fut.result()
            except Exception as e:  # a case that failed twice is reported, the others are kept
                result.failed.append((i, f"{type(e).__name__}: {e}"))
                if on_case:
                    on_case(i, False)
                continue
            _write_case(folder / f"case{i:04d}", u, v, cases[i])
            result.written += 1
            if on_case:
                on_case(i, True)
    if cluster is not None:
        cluster.close()
    if result.written == 0:
        raise InputError(f"every case of {cfg.problem}/{cfg.subset} failed: {result.failed[:3]}")
    convert_cfdbench(result.folder, store, (cfg.subset,))
    return result
