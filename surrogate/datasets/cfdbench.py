"""CFDBench adapter: `{problem}/{prop,bc,geo}/caseNNNN/{u.npy, v.npy, case.json}` -> grid store.

CFDBench's own conventions (Luo et al. 2023, and its data loaders) are reproduced:
- arrays are (T, 64, 64), rows along y (height), columns along x (width), frames 0.1 s apart;
- a mask channel, 1 in the fluid and 0 in solids and padded walls. Obstacles come from the
  case's geometry at the cell centres x = x_min + (j + 1/2) dx, y = y_min + (i + 1/2) dy:
  the cylinder is the disc x^2 + y^2 <= r^2 (the data place it at the origin of
  x_min..x_max, y_min..y_max), the dam barrier the cells with 0.5 <= x <= 0.5 +
  barrier_width and y <= barrier_height: the cells the solver made solid. Two departures
  from CFDBench's loaders: their cylinder mask is a disc at (0.5, 0.5), which misses the
  cylinder in their own coordinates, and their dam loader slices its mask along the time
  axis and so never masks the barrier.
- tube, dam and cylinder are padded to 66 x 65: one column on the left holding the inlet
  velocity (for the dam only the rows below the barrier top, as CFDBench does) and one
  wall row at the top and bottom with zero velocity; padded cells have mask 0;
- case parameters in CFDBench's order, normalized as CFDBench does: density (rho - 5) / 4,
  viscosity (mu - 0.00238) / 0.005, the boundary velocity u / 50 - 0.5;
- the split: case folders of the chosen subsets in prop -> bc -> geo order, each sorted by
  case number, shuffled with `random.seed(seed)`, then 80 / 10 / 10 % (train count rounded
  for cavity, truncated for the others, as CFDBench's autoregressive loaders do).

All trajectories of a store have one length, so every case is cut to the shortest one.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surrogate.datasets.store import GridSchema, GridStoreWriter
from surrogate.errors import InputError

FRAME_DT = 0.1
SUBSETS = ("prop", "bc", "geo")
DENSITY_NORM = (5.0, 4.0)
VISCOSITY_NORM = (0.00238, 0.005)
BC_NORM = (25.0, 50.0)  # u / 50 - 0.5 == (u - 25) / 50


@dataclass(frozen=True)
class Problem:
    """How one CFDBench problem's cases are read."""

    bc_key: str
    params: tuple[str, ...]
    required: frozenset[str]
    optional: frozenset[str]
    padded: bool
    round_train: bool


PROBLEMS = {
    "cavity": Problem(
        "vel_top",
        ("vel_top", "density", "viscosity", "height", "width"),
        frozenset({"vel_top", "density", "viscosity", "height", "width"}),
        frozenset({"case_no"}),
        padded=False,
        round_train=True,
    ),
    "tube": Problem(
        "vel_in",
        ("vel_in", "density", "viscosity", "height", "width"),
        frozenset({"vel_in", "density", "viscosity", "height", "width"}),
        frozenset({"case_no"}),
        padded=True,
        round_train=False,
    ),
    "dam": Problem(
        "velocity",
        ("velocity", "density", "viscosity", "height", "width"),
        frozenset({"velocity", "density", "viscosity", "height", "width", "barrier_height", "barrier_width"}),
        frozenset({"case_no", "dx", "dy"}),
        padded=True,
        round_train=False,
    ),
    "cylinder": Problem(
        "vel_in",
        ("vel_in", "density", "viscosity", "height", "width", "center_x", "center_y", "radius"),
        frozenset({"vel_in", "density", "viscosity", "radius", "x_min", "x_max", "y_min", "y_max"}),
        frozenset({"case_no", "height", "width"}),
        padded=True,
        round_train=False,
    ),
}


def problem_of(src: Path) -> str:
    """The problem name from the folder name (`.../cavity`)."""
    name = src.name
    if name not in PROBLEMS:
        raise InputError(f"{src}: folder name {name!r} is not a CFDBench problem {sorted(PROBLEMS)}")
    return name


def case_dirs(src: Path, subsets: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    """Case folders of `subsets`, in CFDBench's prop -> bc -> geo order, sorted by case number,
    and the subsets whose folders are missing (skipped; at least one must be present)."""
    bad = [s for s in subsets if s not in SUBSETS]
    if bad or not subsets:
        raise InputError(f"subsets {list(subsets)}: expected a non-empty selection of {SUBSETS}")
    dirs: list[Path] = []
    absent = [name for name in SUBSETS if name in subsets and not (src / name).is_dir()]
    for name in SUBSETS:
        if name not in subsets or name in absent:
            continue
        folder = src / name
        cases = [d for d in folder.glob("case*") if d.is_dir()]
        for d in cases:
            if not d.name[4:].isdigit():
                raise InputError(f"{d}: case folders must be named caseNNNN")
        dirs += sorted(cases, key=lambda d: int(d.name[4:]))
    if not dirs:
        raise InputError(f"{src}: no caseNNNN folders in subsets {list(subsets)} (missing subset folders: {absent})")
    return dirs, absent


def cfdbench_split(n: int, seed: int, round_train: bool) -> dict[str, np.ndarray]:
    """CFDBench's split of n cases: `random.seed(seed)`, shuffle, 80 / 10 / 10."""
    order = list(range(n))
    random.seed(seed)
    random.shuffle(order)
    to_int = round if round_train else int
    n_train, n_dev = to_int(n * 0.8), to_int(n * 0.1)
    return {
        "train": np.asarray(order[:n_train]),
        "valid": np.asarray(order[n_train : n_train + n_dev]),
        "test": np.asarray(order[n_train + n_dev :]),
    }


def read_case_params(case: Path, problem: Problem) -> tuple[dict[str, float], list[str]]:
    """case.json's parameters with CFDBench's derived ones, and the keys it holds that are not
    used (ignored, as CFDBench's loaders ignore them: `rotated`, `center_x`, ...)."""
    path = case / "case.json"
    if not path.is_file():
        raise InputError(f"{path}: missing")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a JSON object")
    missing = sorted(problem.required - set(raw))
    if missing:
        raise InputError(f"{path}: missing keys {missing}; a {problem.params[0]}-driven case needs {sorted(problem.required)}")
    used = {k: v for k, v in raw.items() if k in problem.required | problem.optional}
    for k, v in used.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise InputError(f"{path}: key {k!r} must be a finite number, got {v!r}")
    p = {k: float(v) for k, v in used.items()}
    if "x_min" in p:
        p["center_x"], p["center_y"] = -p["x_min"], -p["y_min"]
        p["height"], p["width"] = p["y_max"] - p["y_min"], p["x_max"] - p["x_min"]
    return p, sorted(set(raw) - set(used))


def load_velocity(case: Path) -> tuple[np.ndarray, np.ndarray]:
    """u, v of one case, each (T, H, W), checked for rank, agreement and finiteness."""
    arrays = []
    for name in ("u", "v"):
        path = case / f"{name}.npy"
        if not path.is_file():
            raise InputError(f"{path}: missing")
        try:
            a = np.load(path)
        except (ValueError, OSError) as e:
            raise InputError(f"{path}: not a readable .npy file ({e})") from None
        if a.ndim != 3:
            raise InputError(f"{path}: expected shape (T, height, width), got {a.shape}")
        if not np.isfinite(a).all():
            raise InputError(f"{path}: {int((~np.isfinite(a)).sum())} NaN/Inf values")
        arrays.append(a.astype(np.float32))
    u, v = arrays
    if u.shape != v.shape:
        raise InputError(f"{case}: u.npy {u.shape} and v.npy {v.shape} differ")
    return u, v


def case_features(u: np.ndarray, v: np.ndarray, p: dict[str, float], problem_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CFDBench's padded u, v (T, H', W') and mask (H', W') of one case."""
    problem = PROBLEMS[problem_name]
    _, h, w = u.shape
    mask = np.ones((h, w), dtype=np.float32)
    # Obstacles from the case's own geometry, at the cell centres (rows along y from y_min):
    # the cells the solver made solid. (CFDBench's cylinder loader masks a disc at (0.5, 0.5),
    # which misses the cylinder its data place at the origin of x_min..x_max, y_min..y_max.)
    top_idx = 0
    if problem_name == "cylinder":
        dx, dy = p["width"] / w, p["height"] / h
        x = p["x_min"] + (np.arange(w) + 0.5) * dx
        y = p["y_min"] + (np.arange(h) + 0.5) * dy
        mask[x[None, :] ** 2 + y[:, None] ** 2 <= p["radius"] ** 2] = 0
    if problem_name == "dam":
        dx, dy = p.get("dx", p["width"] / w), p.get("dy", p["height"] / h)
        x, y = (np.arange(w) + 0.5) * dx, (np.arange(h) + 0.5) * dy
        barrier = (x[None, :] >= 0.5) & (x[None, :] <= 0.5 + p["barrier_width"]) & (y[:, None] <= p["barrier_height"])
        mask[barrier] = 0
        top_idx = int(p["barrier_height"] / dy)  # inlet rows below the barrier top, as CFDBench pads them
    if not problem.padded:
        return u, v, mask
    inlet = np.zeros((u.shape[0], h, 1), dtype=np.float32)
    if problem_name == "dam":
        inlet[:, :top_idx] = p["velocity"]
    else:
        inlet[:] = p[problem.bc_key]
    u = np.concatenate([inlet, u], axis=2)
    v = np.pad(v, ((0, 0), (0, 0), (1, 0)))
    mask = np.pad(mask, ((0, 0), (1, 0)))
    walls = ((0, 0), (1, 1), (0, 0))
    return np.pad(u, walls), np.pad(v, walls), np.pad(mask, ((1, 1), (0, 0)))


def convert_cfdbench(src: str | Path, dst: str | Path, subsets: tuple[str, ...] = SUBSETS, seed: int = 0) -> str:
    """Convert one CFDBench problem folder into a store at `dst`; returns a one-line summary."""
    src = Path(src)
    if not src.is_dir():
        raise InputError(f"{src}: no such CFDBench problem folder")
    name = problem_of(src)
    problem = PROBLEMS[name]
    dirs, absent = case_dirs(src, subsets)
    read = [read_case_params(d, problem) for d in dirs]
    params = [p for p, _ in read]
    ignored = sorted({k for _, keys in read for k in keys})
    shapes = []
    for d in dirs:
        arr = np.load(d / "u.npy", mmap_mode="r") if (d / "u.npy").is_file() else None
        if arr is None or arr.ndim != 3:
            load_velocity(d)  # raises the precise error
            raise InputError(f"{d / 'u.npy'}: expected a (T, H, W) array")
        shapes.append(arr.shape)
    space = {s[1:] for s in shapes}
    if len(space) != 1:
        raise InputError(f"{src}: cases have different grids {sorted(space)}; expected one (T, 64, 64) grid")
    n_t = min(s[0] for s in shapes)
    if n_t < 2:
        raise InputError(f"{src}: the shortest case has {n_t} frame(s); at least 2 are needed")
    h, w = next(iter(space))
    hp, wp = (h + 2, w + 1) if problem.padded else (h, w)
    offsets = {problem.bc_key: BC_NORM, "density": DENSITY_NORM, "viscosity": VISCOSITY_NORM}
    schema = GridSchema(
        dataset_name=f"cfdbench_{name}",
        time=np.arange(n_t) * FRAME_DT,
        coords={"y": (np.arange(hp) - int(problem.padded)) / h, "x": (np.arange(wp) - int(problem.padded)) / w},
        scalar_fields=("u", "v"),
        param_names=problem.params,
        param_offset=tuple(offsets.get(k, (0.0, 1.0))[0] for k in problem.params),
        param_scale=tuple(offsets.get(k, (0.0, 1.0))[1] for k in problem.params),
        boundary={"y": "wall", "x": "open" if problem.padded else "wall"},
        has_mask=True,
    )
    with GridStoreWriter(dst, schema, len(dirs)) as writer:
        for i, (d, p) in enumerate(zip(dirs, params)):
            u, v = load_velocity(d)
            u, v, mask = case_features(u[:n_t], v[:n_t], p, name)
            values = np.array([[p[k] for k in problem.params]])
            writer.write(i, {"u": u[None], "v": v[None]}, values, mask[None])
        writer.set_splits(**cfdbench_split(len(dirs), seed, problem.round_train))
    present = [x for x in SUBSETS if x in subsets and x not in absent]
    notes = (f"; subsets missing, skipped: {absent}" if absent else "") + (f"; case.json keys ignored: {ignored}" if ignored else "")
    return f"{len(dirs)} cases of {name} ({', '.join(present)}), {n_t} frames each, grid {hp}x{wp}{notes}"
