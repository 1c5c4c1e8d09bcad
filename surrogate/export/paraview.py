"""Rollouts as ParaView time series: a `.pvd` collection of `.vti` (grids) or `.vtu` (meshes).

Every step holds the prediction, the truth and their difference for each channel
(`<name>_pred`, `<name>_true`, `<name>_error`) and the collection carries the physical time
of each step, so ParaView's time slider plays the rollout. Grid samples are the points of an
image (a solid mask a point field like the others), 2D grids flat 2D images, and velocity
components `<v>_x`, `<v>_y` one vector array `<v>_pred`, ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from surrogate.datasets.atomic import atomic_path
from surrogate.errors import InputError


def write_pvd(path: Path, files: Sequence[str], times: Sequence[float]) -> Path:
    """The `.pvd` collection file listing `files` (relative to its folder) at `times`."""
    rows = "\n".join(f'    <DataSet timestep="{t:.10g}" group="" part="0" file={quoteattr(f)}/>' for f, t in zip(files, times))
    text = (
        '<?xml version="1.0"?>\n<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">\n'
        f"  <Collection>\n{rows}\n  </Collection>\n</VTKFile>\n"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def _fields_per_step(pred: np.ndarray, truth: np.ndarray, names: Sequence[str], expected: tuple[int, ...], what: str) -> None:
    if pred.shape != truth.shape:
        raise InputError(f"{what}: prediction {pred.shape} and truth {truth.shape} differ")
    if pred.ndim < 2 or pred.shape[1] != len(names) or tuple(pred.shape[2:]) != expected:
        raise InputError(f"{what}: fields of shape {pred.shape}, expected (T, {len(names)}, {', '.join(map(str, expected))})")


def vector_groups(names: Sequence[str], dims: Sequence[str]) -> dict[str, list[int]]:
    """Channels by the array they are written as: `<v>_x`, `<v>_y` (one per space dim, all
    present) join into the vector `<v>`; every other channel stays a scalar of its own name."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        base, _, axis = name.rpartition("_")
        parts = [f"{base}_{d}" for d in dims]
        if base and axis in dims and len(dims) > 1 and all(p in names for p in parts):
            groups[base] = [list(names).index(p) for p in parts]
        else:
            groups[name] = [i]
    return groups


def write_grid_rollout(
    out_dir: str | Path,
    pred: np.ndarray,
    truth: np.ndarray,
    times: Sequence[float],
    names: Sequence[str],
    coords: Mapping[str, np.ndarray],
    mask: np.ndarray | None = None,
    stem: str = "rollout",
) -> Path:
    """One trajectory's rollout on a uniform 1-3D grid as `<stem>.pvd` + `<stem>_NNNN.vti`.

    Shapes: pred, truth (T, C, *space); coords one (n,) array per space dim; mask (*space).
    """
    import pyvista as pv

    space = tuple(len(c) for c in coords.values())
    _fields_per_step(pred, truth, names, space, "grid rollout export")
    if len(times) != pred.shape[0]:
        raise InputError(f"grid rollout export: {len(times)} times for {pred.shape[0]} steps")
    if mask is not None and mask.shape != space:
        raise InputError(f"grid rollout export: mask {mask.shape} does not match the grid {space}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spacing = [float(c[1] - c[0]) if len(c) > 1 else 1.0 for c in coords.values()]
    origin = [float(c[0]) for c in coords.values()]
    pad = 3 - len(space)
    # The samples are the image's points, and a 2D grid is a flat image (one point along the
    # missing axes): ParaView's default view of it is a coloured slice, not the outline of a
    # one-cell-thick box (and a flat image's cell data would show nothing in that view).
    grid = pv.ImageData(dimensions=list(space) + [1] * pad, spacing=spacing + [1.0] * pad, origin=origin + [0.0] * pad)
    groups = vector_groups(names, list(coords))
    files = []
    for k in range(pred.shape[0]):
        step = grid.copy()
        for name, idx in groups.items():
            # VTK orders points x fastest: Fortran order of our (x, y, z) arrays; vectors get 3 components.
            for suffix, values in (("pred", pred[k, idx]), ("true", truth[k, idx]), ("error", pred[k, idx] - truth[k, idx])):
                flat = np.stack([np.ravel(v, order="F") for v in values], axis=1)  # (points, components)
                if len(idx) > 1:
                    flat = np.pad(flat, ((0, 0), (0, 3 - len(idx))))
                step.point_data[f"{name}_{suffix}"] = flat if len(idx) > 1 else flat[:, 0]
        if mask is not None:
            step.point_data["mask"] = np.ravel(mask, order="F")
        name = f"{stem}_{k:04d}.vti"
        with atomic_path(out / name) as tmp:
            step.save(tmp)
        files.append(name)
    return write_pvd(out / f"{stem}.pvd", files, times)


def write_mesh_rollout(
    out_dir: str | Path,
    points: np.ndarray,
    cells: Mapping[str, np.ndarray],
    pred: np.ndarray,
    truth: np.ndarray,
    times: Sequence[float],
    names: Sequence[str],
    stem: str = "rollout",
) -> Path:
    """One mesh rollout as `<stem>.pvd` + `<stem>_NNNN.vtu` (point data). pred, truth (T, C, N)."""
    import meshio

    _fields_per_step(pred, truth, names, (points.shape[0],), "mesh rollout export")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pad3 = np.pad(points, ((0, 0), (0, 3 - points.shape[1])))  # VTU points are 3D
    files = []
    for k in range(pred.shape[0]):
        data = {}
        for c, name in enumerate(names):
            data[f"{name}_pred"] = pred[k, c]
            data[f"{name}_true"] = truth[k, c]
            data[f"{name}_error"] = pred[k, c] - truth[k, c]
        mesh = meshio.Mesh(pad3, list(cells.items()), point_data=data)
        name = f"{stem}_{k:04d}.vtu"
        with atomic_path(out / name) as tmp:
            meshio.write(tmp, mesh, file_format="vtu")
        files.append(name)
    return write_pvd(out / f"{stem}.pvd", files, times)
