"""Readers of unstructured-mesh time series: VTU series, XDMF temporal collections,
MeshGraphNet-style HDF5, and (in `surrogate.datasets.openfoam`) OpenFOAM cases and foamToVTK
output, all into one in-memory `MeshSeries`.

Every reader checks what it reads and names the file and field when something is wrong:
unsupported cell types, point data whose length is not the number of points, missing
fields, NaN/Inf values. Vector fields stored as components (`velocity_x`, `velocity_y`)
are joined into one `(T, N, D)` field; 2D meshes stored with a zero z coordinate become
`(N, 2)` points. Cells of a lower dimension than the mesh's volume cells (boundary lines
of a 2D mesh, boundary faces of a 3D one) are annotations and are dropped. Nodes that no
cell references are kept (the graph gives them a self-loop).

Shapes:
    points  (N, d)           d = 2 or 3
    cells   {type: (M, k)}   meshio cell type names
    fields  {name: (T, N) or (T, N, D)} float32
    times   (T,)
    node_type (N,) int64 or None (see `surrogate.datasets.mesh_graph.NODE_TYPES`)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from surrogate.errors import InputError

CELL_DIM = {"triangle": 2, "quad": 2, "tetra": 3, "hexahedron": 3, "wedge": 3, "pyramid": 3}
LOWER_DIM = {"vertex": 0, "line": 1, "triangle": 2, "quad": 2}
VTK_TO_MESHIO = {5: "triangle", 9: "quad", 10: "tetra", 12: "hexahedron", 13: "wedge", 14: "pyramid"}
# MeshGraphNet's node_type codes -> ours (0 interior, 1 wall, 2 inflow, 3 outflow).
MGN_NODE_TYPES = {0: 0, 1: 1, 2: 1, 3: 1, 4: 2, 5: 3, 6: 1}
MGN_NODE_NAMES = {0: "normal", 1: "obstacle", 2: "airfoil", 3: "handle", 4: "inflow", 5: "outflow", 6: "wall"}


@dataclass
class MeshSeries:
    """One trajectory on one fixed mesh."""

    points: np.ndarray
    cells: dict[str, np.ndarray]
    fields: dict[str, np.ndarray]
    times: np.ndarray
    source: str
    node_type: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)  # what the reader skipped or assumed, for the user

    @property
    def n_nodes(self) -> int:
        return self.points.shape[0]

    @property
    def n_steps(self) -> int:
        return len(self.times)

    def channel_names(self, fields: Sequence[str] | None = None) -> list[str]:
        """The model's channels: scalars by name, vectors as `<name>_x`, `<name>_y`(, `_z`)."""
        names = []
        for f in fields or sorted(self.fields):
            a = self.fields[f]
            names += [f] if a.ndim == 2 else [f"{f}_{'xyz'[i]}" for i in range(a.shape[2])]
        return names

    def stacked(self, fields: Sequence[str] | None = None) -> np.ndarray:
        """The chosen fields as one array (T, N, C), channels as `channel_names`."""
        fields = list(fields or sorted(self.fields))
        missing = [f for f in fields if f not in self.fields]
        if missing:
            raise InputError(f"{self.source}: no field(s) {missing}; the file has {sorted(self.fields)}")
        return np.concatenate([a[..., None] if a.ndim == 2 else a for a in (self.fields[f] for f in fields)], axis=-1)


def volume_cells(cells: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """The cells of the mesh's top dimension; fails on cell types the graph cannot use."""
    unknown = sorted(set(cells) - set(CELL_DIM) - set(LOWER_DIM))
    if unknown:
        raise InputError(f"{source}: unsupported cell type(s) {unknown}; supported: {sorted(CELL_DIM)}")
    dims = {CELL_DIM[t] for t in cells if t in CELL_DIM and len(cells[t])}
    if not dims:
        raise InputError(f"{source}: no surface or volume cells (found {sorted(cells)}); a mesh needs {sorted(CELL_DIM)}")
    top = max(dims)
    return {t: np.asarray(c, dtype=np.int64) for t, c in cells.items() if CELL_DIM.get(t) == top and len(c)}


def _points(points: np.ndarray, source: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise InputError(f"{source}: points of shape {points.shape}, expected (N, 2) or (N, 3)")
    if not np.isfinite(points).all():
        raise InputError(f"{source}: {int((~np.isfinite(points)).sum())} NaN/Inf point coordinates")
    if points.shape[1] == 3 and np.ptp(points[:, 2]) == 0.0:
        points = points[:, :2]  # a 2D mesh written with z = 0
    return points


def _check_cells(cells: dict[str, np.ndarray], n: int, source: str) -> None:
    for t, c in cells.items():
        if c.size and (c.min() < 0 or c.max() >= n):
            raise InputError(f"{source}: {t} cells reference nodes [{c.min()}, {c.max()}] but the mesh has {n} points")


def join_components(data: dict[str, np.ndarray], n: int, source: str) -> dict[str, np.ndarray]:
    """Point data of one step -> {name: (N,) or (N, D)}, `<name>_x/_y/_z` joined into vectors."""
    out: dict[str, np.ndarray] = {}
    for name, a in data.items():
        a = np.asarray(a)
        if a.shape[0] != n:
            raise InputError(f"{source}: point field {name!r} has {a.shape[0]} values, the mesh has {n} points")
        if a.ndim > 2:
            raise InputError(f"{source}: point field {name!r} of shape {a.shape}; expected (N,) or (N, D)")
        out[name] = a.astype(np.float32)
    groups: dict[str, dict[int, str]] = {}
    for name in out:
        m = re.fullmatch(r"(.+)_([xyz])", name)
        if m and out[name].ndim == 1:
            groups.setdefault(m.group(1), {})["xyz".index(m.group(2))] = name
    for base, comps in groups.items():
        if sorted(comps) == list(range(len(comps))) and len(comps) >= 2 and base not in out:
            out[base] = np.stack([out.pop(comps[i]) for i in range(len(comps))], axis=-1)
    return out


def _stack_steps(steps: list[dict[str, np.ndarray]], sources: list[str], fields: Sequence[str] | None) -> dict[str, np.ndarray]:
    """[{name: (N[, D])}] * T -> {name: (T, N[, D])}, every step holding the chosen fields."""
    names = list(fields) if fields else sorted(steps[0])
    if not names:
        raise InputError(f"{sources[0]}: no point data to read")
    for step, src in zip(steps, sources):
        missing = [f for f in names if f not in step]
        if missing:
            raise InputError(f"{src}: no point field(s) {missing}; it has {sorted(step)}")
    out = {}
    for f in names:
        shapes = {s[f].shape for s in steps}
        if len(shapes) > 1:
            raise InputError(f"{sources[0]}: field {f!r} changes shape between steps: {sorted(shapes)}")
        out[f] = np.stack([s[f] for s in steps])
        bad = ~np.isfinite(out[f])
        if bad.any():
            t = int(np.argwhere(bad.reshape(len(steps), -1).any(1))[0, 0])
            raise InputError(f"{sources[t]}: field {f!r} holds {int(bad.sum())} NaN/Inf values (first at step {t})")
    return out


def _series(
    points: np.ndarray,
    cells: dict[str, np.ndarray],
    steps: list[dict[str, np.ndarray]],
    times: np.ndarray,
    sources: list[str],
    fields: Sequence[str] | None,
    node_type: np.ndarray | None = None,
) -> MeshSeries:
    points = _points(points, sources[0])
    cells = volume_cells(cells, sources[0])
    _check_cells(cells, len(points), sources[0])
    data = _stack_steps([join_components(s, len(points), src) for s, src in zip(steps, sources)], sources, fields)
    return MeshSeries(points, cells, data, np.asarray(times, dtype=np.float64), sources[0], node_type)


def _numbered(paths: Sequence[Path]) -> list[Path]:
    """Files in the order of the last integer in their names (cyl_2 before cyl_10)."""

    def key(p: Path) -> tuple[int, str]:
        nums = re.findall(r"\d+", p.stem)
        return (int(nums[-1]) if nums else -1, p.name)

    return sorted(paths, key=key)


def read_series(path: Path) -> dict[str, float]:
    """{file name: time}, in the file's order, from a ParaView `.series` file (JSON {"files": [{"name", "time"}]})."""
    import json

    try:
        return {str(e["name"]): float(e["time"]) for e in json.loads(path.read_text())["files"]}
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a readable .series file ({type(e).__name__}: {e})") from None


def series_times(folder: Path) -> dict[str, float]:
    """{file name: time} from the ParaView `.series` files in `folder`."""
    out: dict[str, float] = {}
    for f in sorted(folder.glob("*.series")):
        out.update(read_series(f))
    return out


def time_value(stamp: object) -> float:
    """A `TimeValue` field-data array as a float, float32 values by their shortest decimal (0.3, not 0.30000001)."""
    a = np.asarray(stamp).ravel()
    return float(str(a[0])) if a.dtype == np.float32 else float(a[0])


def untimed(times: Sequence[float | None], dt: float | None, where: str) -> tuple[list[float], list[str]]:
    """The steps' times, k * dt where any step carries none (dt = 1 if not given), and a note saying so."""
    if all(t is not None for t in times):
        return [float(t) for t in times if t is not None], []
    if dt is not None:
        return [k * dt for k in range(len(times))], [f"{where}: the steps carry no time; step k placed at k * {dt:g} (--dt)"]
    note = f"{where}: the steps carry no time (no .series file, no TimeValue); step k placed at time k; give --dt"
    return [float(k) for k in range(len(times))], [note]


def read_vtu_series(paths: Sequence[str | Path] | str | Path, fields: Sequence[str] | None = None, dt: float | None = None) -> MeshSeries:
    """A VTU time series: a folder of `.vtu` files or a list of them, one per step, on one mesh.

    Each step's time comes from a `.series` file beside the files, else from the file's
    `TimeValue` field data, else it is k * dt (dt = 1 when not given, said in the notes).
    """
    import meshio

    if isinstance(paths, (str, Path)) and Path(paths).is_dir():
        files = _numbered(list(Path(paths).glob("*.vtu")))
        if not files:
            raise InputError(f"{paths}: no .vtu files in this folder")
    else:
        files = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    steps, times, ref = [], [], None
    listed = series_times(files[0].parent) if files else {}
    for f in files:
        if not f.is_file():
            raise InputError(f"{f}: no such file")
        try:
            m = meshio.read(f)
        except Exception as e:  # meshio raises several types for malformed files
            raise InputError(f"{f}: not a readable VTU file ({type(e).__name__}: {str(e)[:200]})") from None
        if ref is None:
            ref = m
        elif m.points.shape != ref.points.shape or not np.allclose(m.points, ref.points):
            raise InputError(f"{f}: its points differ from {files[0]}'s; a series must share one mesh")
        steps.append(dict(m.point_data))
        stamp = m.field_data.get("TimeValue")
        times.append(listed.get(f.name, time_value(stamp) if stamp is not None else None))
    if ref is None:
        raise InputError("the series holds no file")
    stamped, notes = untimed(times, dt, str(files[0].parent))
    cells = {b.type: b.data for b in ref.cells}
    series = _series(ref.points, cells, steps, np.asarray(stamped), [str(f) for f in files], fields)
    series.notes = notes
    return series


def read_xdmf(path: str | Path, fields: Sequence[str] | None = None) -> MeshSeries:
    """An XDMF temporal collection (as meshio's TimeSeriesWriter and many solvers write it)."""
    import meshio

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with meshio.xdmf.TimeSeriesReader(path) as reader:
            points, blocks = reader.read_points_cells()
            steps, times = [], []
            for k in range(reader.num_steps):
                t, point_data, _ = reader.read_data(k)
                steps.append(point_data)
                times.append(t)
    except InputError:
        raise
    except Exception as e:  # meshio/h5py/xml raise several types for malformed files
        try:
            meshio.read(path)
        except Exception:  # not a single grid either
            raise InputError(f"{path}: not a readable XDMF temporal collection ({type(e).__name__}: {str(e)[:200]})") from None
        raise InputError(
            f"{path}: one grid, not a temporal collection: a steady sample, which `surrogate convert steady FOLDER` "
            "takes (a folder of such files, one geometry each); `convert mesh` needs a time series"
        ) from None
    if not steps:
        raise InputError(f"{path}: the collection holds no time steps")
    return _series(
        points, {b.type: b.data for b in blocks}, steps, np.asarray(times), [f"{path} (step {k})" for k in range(len(steps))], fields
    )


def read_meshgraphnet_h5(path: str | Path, fields: Sequence[str] | None = None, dt: float = 0.01) -> list[MeshSeries]:
    """MeshGraphNet-style HDF5: one group per trajectory with `mesh_pos` (T, N, d) or (N, d),
    `cells` (T, M, k) or (M, k), `node_type` (T, N, 1) or (N,), and time-varying fields such as
    `velocity` (T, N, D) or `pressure` (T, N, 1). Each trajectory may have its own mesh."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    out = []
    with h5py.File(path, "r") as h:
        for name in sorted(h, key=lambda s: (len(s), s)):
            g = h[name]
            src = f"{path}:/{name}"
            for key in ("mesh_pos", "cells"):
                if key not in g:
                    raise InputError(f"{src}: no dataset {key!r} (a MeshGraphNet trajectory needs mesh_pos and cells)")
            pos, cells = np.asarray(g["mesh_pos"]), np.asarray(g["cells"])
            pos, cells = (pos[0] if pos.ndim == 3 else pos), (cells[0] if cells.ndim == 3 else cells)
            kind = {3: "triangle", 4: "tetra"}.get(cells.shape[1])
            if kind is None:
                raise InputError(f"{src}/cells: {cells.shape[1]} nodes per cell; expected 3 (triangles) or 4 (tetrahedra)")
            node_type = None
            if "node_type" in g:
                raw = np.asarray(g["node_type"]).reshape(-1, pos.shape[0])[0].astype(np.int64)
                unknown = sorted(set(raw.tolist()) - set(MGN_NODE_TYPES))
                if unknown:
                    raise InputError(f"{src}/node_type: unknown codes {unknown}; MeshGraphNet's are {sorted(MGN_NODE_TYPES)}")
                node_type = np.vectorize(MGN_NODE_TYPES.get)(raw).astype(np.int64)
            static = {"mesh_pos", "cells", "node_type"}
            varying = {k: np.asarray(g[k]) for k in g if k not in static and isinstance(g[k], h5py.Dataset)}
            lengths = {a.shape[0] for a in varying.values()}
            if len(lengths) != 1:
                raise InputError(f"{src}: time-varying datasets have different lengths {sorted(lengths)}")
            n_steps = lengths.pop()
            steps = [{k: (a[t][:, 0] if a.ndim == 3 and a.shape[2] == 1 else a[t]) for k, a in varying.items()} for t in range(n_steps)]
            out.append(_series(pos, {kind: cells}, steps, np.arange(n_steps) * dt, [src] * n_steps, fields, node_type))
    if not out:
        raise InputError(f"{path}: no trajectory groups in this file")
    return out


FORMATS = ("vtu", "xdmf", "meshgraphnet", "openfoam", "foamtovtk")


def read_mesh(
    fmt: str, src: str | Path, fields: Sequence[str] | None = None, dt: float | None = None, velocity: str = "U"
) -> list[MeshSeries]:
    """Any supported source as a list of trajectories (`dt`: time per step of series that carry
    none; `velocity`: the OpenFOAM field whose boundary conditions type the patches)."""
    from surrogate.datasets.openfoam import read_foamtovtk, read_openfoam

    if fmt == "vtu":
        return [read_vtu_series(src, fields, dt)]
    if fmt == "xdmf":
        return [read_xdmf(src, fields)]
    if fmt == "meshgraphnet":
        return read_meshgraphnet_h5(src, fields, 0.01 if dt is None else dt)
    if fmt == "openfoam":
        return [read_openfoam(src, fields, velocity)]
    if fmt == "foamtovtk":
        return [read_foamtovtk(src, fields, dt, velocity)]
    raise InputError(f"mesh format {fmt!r}: expected one of {FORMATS}")
