"""Steady samples from VTU/XDMF files (one file per geometry) -> the steady point-cloud store.

Public airfoil datasets ship each steady solution as an unstructured 2D mesh with point
fields: velocity (a vector or `_x/_y` components), pressure, a distance to the wall
(AirfRANS calls it `implicit_distance`) and sometimes a node type. This adapter reads such
files with meshio, keeps the chosen fields, takes the SDF from `sdf_field` (required: a
sample without one is refused, naming the file), traces the obstacle boundaries from the
mesh's boundary edges (every loop but the outer one; open or self-intersecting loops are
refused) and reads global parameters from a JSON table `{file stem: {name: value}}` or
from the numbers in the file names (AirfRANS's convention).

Node types come from the file's `node_type_field` when given (MeshGraphNet's codes, as
graph-physics files carry them, mapped to ours; an unknown code is refused), else from the
boundary: obstacle loops are walls whatever the flow does along them (slip walls included),
the outer boundary is split into walls where the flow is still and inflow and outflow by
the velocity's direction across it. The surface band is the nodes of the obstacles' loops.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from surrogate.datasets.geometry import boundary_loops, ring_area
from surrogate.datasets.mesh import MGN_NODE_NAMES, MGN_NODE_TYPES, _numbered, _points, join_components, volume_cells
from surrogate.datasets.mesh_graph import WALL, boundary_faces, infer_node_types
from surrogate.datasets.steady_store import SteadySample, write_steady_store
from surrogate.errors import InputError


def _files(src: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(src, (str, Path)) and Path(src).is_dir():
        files = _numbered([p for p in Path(src).iterdir() if p.suffix in (".vtu", ".xdmf", ".vtk")])
        if not files:
            raise InputError(f"{src}: no .vtu, .vtk or .xdmf files in this folder")
        return files
    files = [Path(p) for p in ([src] if isinstance(src, (str, Path)) else src)]
    for f in files:
        if not f.is_file():
            raise InputError(f"{f}: no such file")
    return files


def _params(f: Path, table: dict[str, dict[str, float]] | None, names: list[str] | None) -> tuple[list[str], np.ndarray]:
    """A file's global parameters: its row of the JSON table, else the numbers of its name.

    AirfRANS names its files by their parameters (`airFoil2D_SST_31.677_-0.742_2.926_...`:
    inflow speed, angle of attack, NACA digits): the underscore-separated numbers of the
    stem are given the names `names` in order.
    """
    if table is not None:
        if f.stem not in table:
            raise InputError(f"params table: no entry for {f.stem!r} (file {f}); it has {sorted(table)[:5]}")
        row = table[f.stem]
        names = names if names is not None else sorted(row)
        missing = [n for n in names if n not in row]
        if missing:
            raise InputError(f"{f}: global parameter(s) {missing} missing from the params table; it has {sorted(row)}")
        return names, np.array([float(row[n]) for n in names])
    if not names:
        return [], np.zeros(0)
    numbers = []
    for token in f.stem.split("_"):
        try:
            numbers.append(float(token))
        except ValueError:
            continue
    if len(numbers) < len(names):
        raise InputError(
            f"{f}: global parameter(s) {names} read from the file name, but its name holds only "
            f"{len(numbers)} number(s) {numbers}; give a params table instead"
        )
    return names, np.array(numbers[: len(names)])


def read_steady_sample(
    f: Path, fields: Sequence[str], sdf_field: str, node_type_field: str | None, velocity: str | None
) -> tuple[SteadySample, list[str]]:
    """One file -> (sample without params, its channel names)."""
    import meshio

    try:
        m = meshio.read(f)
    except Exception as e:  # meshio raises several types for malformed files
        raise InputError(f"{f}: not a readable mesh file ({type(e).__name__}: {str(e)[:200]})") from None
    points = _points(m.points, str(f))
    if points.shape[1] != 2:
        raise InputError(f"{f}: steady samples must be 2D (points with constant z); got {points.shape[1]}D points")
    data = join_components(dict(m.point_data), len(points), str(f))
    if sdf_field not in data:
        raise InputError(
            f"{f}: no SDF field {sdf_field!r} (the signed distance to the walls); point fields are {sorted(data)}. "
            "Name the right one with --sdf-field"
        )
    missing = [n for n in fields if n not in data]
    if missing:
        raise InputError(f"{f}: no point field(s) {missing}; it has {sorted(data)}")
    channels, cols = [], []
    for n in fields:
        a = data[n]
        if a.ndim == 2:
            keep = [c for c in range(a.shape[1]) if c < 2 or np.any(a[:, c])]  # drop a zero z component
            cols += [a[:, c] for c in keep]
            channels += [f"{n}_{'xyz'[c]}" for c in keep]
        else:
            cols.append(a)
            channels.append(n)
    values = np.stack(cols, axis=1)
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(f"{f}: fields {fields} hold {int(bad.sum())} NaN/Inf values")
    cells = volume_cells({b.type: b.data for b in m.cells}, str(f))
    faces, _ = boundary_faces(cells, points)
    loops = boundary_loops(np.array(faces), points, str(f))
    # The outer boundary encloses the largest area; every other loop bounds an obstacle.
    outer = int(np.argmax([abs(ring_area(points[np.r_[lp, lp[:1]]])) for lp in loops]))
    obstacles = [lp for i, lp in enumerate(loops) if i != outer]
    if node_type_field:
        node_type = mapped_node_types(data, node_type_field, str(f))
    else:
        vel = data[velocity][None, :, :2] if velocity and velocity in data and data[velocity].ndim == 2 else None
        node_type = infer_node_types(cells, points, vel)
        for lp in obstacles:  # an obstacle's boundary is a wall, whatever the flow does along it (slip walls)
            node_type[lp] = WALL
    sdf = data[sdf_field].astype(np.float64)
    surface = np.zeros(len(points), dtype=bool)
    for lp in obstacles:
        surface[lp] = True
    rings = [points[np.r_[lp, lp[:1]]] for lp in obstacles]
    return SteadySample(points, sdf, values, node_type, surface, np.zeros(0), rings), channels


def mapped_node_types(data: dict[str, np.ndarray], name: str, where: str) -> np.ndarray:
    """A point field of MeshGraphNet's node-type codes (as graph-physics and MeshGraphNet files
    carry them: normal, obstacle, airfoil, handle, inflow, outflow, wall) in our types; an unknown
    code is refused."""
    if name not in data:
        raise InputError(f"{where}: no node-type field {name!r}; point fields are {sorted(data)}")
    raw = np.asarray(data[name]).reshape(len(next(iter(data.values()))), -1)[:, 0]
    if not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
        raise InputError(f"{where}: node-type field {name!r} holds non-integer values")
    codes = raw.astype(np.int64)
    unknown = sorted(set(np.unique(codes).tolist()) - set(MGN_NODE_TYPES))
    if unknown:
        known = ", ".join(f"{k} {v}" for k, v in MGN_NODE_NAMES.items())
        raise InputError(f"{where}: node-type field {name!r} holds unknown codes {unknown}; MeshGraphNet's codes are {known}")
    return np.vectorize(MGN_NODE_TYPES.get)(codes).astype(np.int64)


def convert_steady(
    src: str | Path | Sequence[str | Path],
    dst: str | Path,
    fields: Sequence[str],
    sdf_field: str = "sdf",
    params: str | Path | None = None,
    param_names: Sequence[str] | None = None,
    node_type_field: str | None = None,
    velocity: str | None = "velocity",
) -> Path:
    """Every file of `src` (a folder or a list) as one sample of the store `dst`."""
    if not fields:
        raise InputError("fields: name the point fields to learn (for example U p)")
    table = None
    if params is not None:
        try:
            table = json.loads(Path(params).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{params}: not a readable JSON table of parameters ({e})") from None
    samples, names, channels = [], list(param_names) if param_names else None, None
    for f in _files(src):
        s, ch = read_steady_sample(f, fields, sdf_field, node_type_field, velocity)
        if channels is not None and ch != channels:
            raise InputError(f"{f}: channels {ch} differ from the first file's {channels}")
        names, s.params = _params(f, table, names)
        samples.append(s)
        channels = ch
    return write_steady_store(dst, samples, channels or [], names or [], {"source": str(src)})
