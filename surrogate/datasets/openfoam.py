"""OpenFOAM cases and foamToVTK output as `MeshSeries`, with OpenFOAM's own conventions.

- **2D cases.** OpenFOAM keeps a 2D case as a one-cell-thick 3D slab whose front and back
  patches are `empty`. Such a case becomes a 2D mesh: the points of one face of the slab,
  the cells' faces on it (hexahedra -> quads, wedges -> triangles, counter-clockwise), and
  vectors without their component along the empty direction.
- **Node types from the case, not from the flow.** Each boundary patch is typed by its
  type in `constant/polyMesh/boundary` and the velocity's boundary condition in the first
  time directory (read with foamlib): a prescribed velocity on a wall (`noSlip`,
  `movingWallVelocity`, `fixedValue` on a `wall` patch, or a zero fixed value) is a wall,
  a prescribed non-zero velocity on another patch an inflow, a velocity the solver computes
  (`zeroGradient`, `inletOutlet`, `slip`, symmetry, ...) an outflow (a predicted boundary).
  A point on several patches takes wall over inflow over outflow.
- **Point data.** Fields are VTK's cell-to-point interpolation (the OpenFOAM reader's, using
  the patch values on the boundary), the convention of the mesh store; `surrogate watch`
  streams the same.
- **Fields written at every time.** A field missing from some time directories (pitzDaily's
  `f`, `nuTilda`, `omega`, `v2` exist in `0/` only) is skipped and named in the notes.
- **foamToVTK.** Its default output (`<case>.vtm.series` naming `<case>_<k>.vtm`, each with
  `<case>_<k>/internal.vtu`) and its `-legacy` output (`<case>_<k>.vtk`) are read, each step's
  time taken from the `.series` file or the `TimeValue` field data, or k * dt without either.

Shapes: as `surrogate.datasets.mesh` (points (N, d), fields (T, N) or (T, N, d)).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from surrogate.datasets.mesh import VTK_TO_MESHIO, MeshSeries, _numbered, _series, read_series, time_value, untimed
from surrogate.datasets.mesh_graph import INFLOW, OUTFLOW, WALL
from surrogate.errors import InputError

if TYPE_CHECKING:
    import pyvista

WALL_BCS = {"noSlip", "movingWallVelocity", "rotatingWallVelocity", "translatingWallVelocity"}
FIXED_BCS = WALL_BCS | {
    "fixedValue",
    "uniformFixedValue",
    "flowRateInletVelocity",
    "surfaceNormalFixedValue",
    "cylindricalInletVelocity",
    "timeVaryingMappedFixedValue",
}
NOT_BOUNDARY = {"empty", "wedge", "cyclic", "cyclicAMI", "processor", "processorCyclic"}
CAP = {"hexahedron": ("quad", 4), "wedge": ("triangle", 3)}


def openfoam_reader(case: Path) -> pyvista.OpenFOAMReader:
    """pyvista's reader of an OpenFOAM case, opened through a (possibly empty) `<case>.foam` file."""
    import pyvista

    foam = case / f"{case.name}.foam"
    foam.touch(exist_ok=True)
    return pyvista.OpenFOAMReader(str(foam))


def _time_dirs(case: Path) -> list[Path]:
    out = []
    for d in case.iterdir():
        try:
            out.append((float(d.name), d))
        except ValueError:
            continue
    return [d for _, d in sorted(out) if d.is_dir()]


def _bc(field: dict[str, Any], patch: str, groups: Sequence[str]) -> dict[str, Any] | None:
    """The boundary condition of `patch` in a field's boundaryField: by name, by group, or by a
    quoted regular expression such as "(fixedWalls|movingWall)" or ".*"."""
    if patch in field:
        return dict(field[patch])
    for g in groups:
        if g in field:
            return dict(field[g])
    for key in field:
        k = str(key).strip('"')
        if k != key or any(ch in k for ch in "(|.*"):
            try:
                if re.fullmatch(k, patch):
                    return dict(field[key])
            except re.error:
                continue
    return None


def patch_roles(case: Path, velocity: str = "U") -> tuple[dict[str, tuple[str, int | None]], list[str]]:
    """{patch: (its mesh type, WALL, INFLOW, OUTFLOW or None for patches that are not a boundary:
    empty, cyclic, ...)} from the case's boundary file and the velocity's boundary conditions; and notes."""
    from foamlib import FoamFile

    boundary = case / "constant" / "polyMesh" / "boundary"
    try:
        patches: Any = FoamFile(boundary)[None]
        entries = [(str(name), dict(d)) for name, d in patches]
    except Exception as e:  # foamlib raises several types on malformed files
        raise InputError(f"{boundary}: not a readable OpenFOAM boundary file ({type(e).__name__}: {str(e)[:200]})") from None
    notes: list[str] = []
    u_file = next((d / velocity for d in _time_dirs(case) if (d / velocity).is_file()), None)
    bcs: Any = {}
    if u_file is None:
        notes.append(f"no {velocity} field in any time directory: patches typed by their mesh type only (wall, else outflow)")
    else:
        try:
            bcs = FoamFile(u_file)["boundaryField"]
        except Exception as e:  # foamlib raises several types on malformed files
            raise InputError(f"{u_file}: no readable boundaryField ({type(e).__name__}: {str(e)[:200]})") from None
    roles: dict[str, tuple[str, int | None]] = {}
    for name, d in entries:
        kind = str(d.get("type", "patch"))
        if kind in NOT_BOUNDARY:
            roles[name] = (kind, None)
            continue
        bc = _bc(bcs, name, [str(g) for g in d.get("inGroups", [])]) if bcs else None
        bc_type = str(bc.get("type")) if bc else ""
        value = np.asarray(bc.get("value", bc.get("uniformValue", 1.0)), dtype=object) if bc else None
        zero = value is not None and value.dtype != object and not np.any(value)
        if bc is None and bcs:
            notes.append(f"patch {name!r}: no {velocity} boundary condition found; typed by its mesh type {kind!r}")
        if bc_type in NOT_BOUNDARY:
            roles[name] = (kind, None)
        elif bc_type in WALL_BCS or (bc_type in FIXED_BCS and (kind == "wall" or zero)) or (not bc_type and kind == "wall"):
            roles[name] = (kind, WALL)
        elif bc_type in FIXED_BCS:
            roles[name] = (kind, INFLOW)
        else:
            roles[name] = (kind, OUTFLOW)
    return roles, notes


def slab_axis(points: np.ndarray) -> int | None:
    """The axis along which the points lie on exactly two planes, half on each (a one-cell-thick slab)."""
    if points.shape[1] != 3:
        return None
    for axis in range(3):
        values = np.unique(points[:, axis])
        if len(values) == 2 and 2 * int((points[:, axis] == values[0]).sum()) == len(points):
            return axis
    return None


def flatten_slab(
    points: np.ndarray, cells: dict[str, np.ndarray], axis: int, source: str
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """The slab's lower face as a 2D mesh: (points (N2, 2), cells {quad/triangle: (M, k)}, kept
    point ids (N2,) into `points`). Each cap is ordered counter-clockwise."""
    low = points[:, axis] == points[:, axis].min()
    kept = np.flatnonzero(low)
    new_id = np.full(len(points), -1, dtype=np.int64)
    new_id[kept] = np.arange(len(kept))
    plane = [a for a in range(3) if a != axis]
    flat = points[kept][:, plane]
    out: dict[str, list[np.ndarray]] = {}
    for kind, c in cells.items():
        if kind not in CAP:
            raise InputError(f"{source}: {kind} cells in a 2D (empty-patch) case; expected hexahedra or wedges spanning the slab")
        cap, k = CAP[kind]
        on = low[c]  # (M, nodes)
        if not (on.sum(axis=1) == k).all():
            raise InputError(f"{source}: some {kind} cells do not span the slab (expected {k} of their nodes on each face)")
        ids = new_id[c[on].reshape(len(c), k)]
        xy = flat[ids]  # (M, k, 2)
        rel = xy - xy.mean(axis=1, keepdims=True)
        order = np.argsort(np.arctan2(rel[..., 1], rel[..., 0]), axis=1)
        out.setdefault(cap, []).append(np.take_along_axis(ids, order, axis=1))
    return flat, {t: np.concatenate(v) for t, v in out.items()}, kept


def _point_fields(mesh: pyvista.DataSet, kept: np.ndarray | None, axis: int | None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Point data (N,) scalars and (N, d) vectors of the kept points; other widths skipped (named)."""
    out, skipped = {}, []
    for name in mesh.point_data.keys():
        a = np.asarray(mesh.point_data[name])
        a = a if kept is None else a[kept]
        if a.ndim == 2 and a.shape[1] == 3 and axis is not None:
            a = np.delete(a, axis, axis=1)
        elif a.ndim == 2 and a.shape[1] != 3:
            skipped.append(f"{name} ({a.shape[1]} components)")
            continue
        out[name] = a
    return out, skipped


def _common_fields(
    read: list[tuple[dict[str, np.ndarray], list[str]]], fields: Sequence[str] | None
) -> tuple[list[str], list[dict[str, np.ndarray]], list[str]]:
    """From each step's (fields, skipped): the fields to keep (the chosen ones, else those of
    every step), the steps restricted to them, and notes naming what was skipped."""
    steps = [d for d, _ in read]
    notes = [f"skipped {s}: not a scalar or a vector" for s in sorted({s for _, sk in read for s in sk})]
    every = set.intersection(*(set(d) for d in steps))
    partial = sorted(set.union(*(set(d) for d in steps)) - every)
    if partial and not fields:
        notes.append(f"skipped {', '.join(partial)}: not written at every time")
    keep = list(fields) if fields else sorted(every)
    return keep, [{k: d[k] for k in keep if k in d} for d in steps], notes


class FoamCase:
    """An OpenFOAM case read with pyvista's OpenFOAM reader, as a 2D mesh when it is one.

    Args:
        case: the case folder (constant/polyMesh and time directories).
        velocity: the velocity field whose boundary conditions type the patches.
    """

    def __init__(self, case: str | Path, velocity: str = "U") -> None:
        self.case = Path(case)
        if not (self.case / "constant" / "polyMesh").is_dir():
            raise InputError(f"{self.case}: not an OpenFOAM case (no constant/polyMesh)")
        self.roles, self.notes = patch_roles(self.case, velocity)
        self.two_d = any(kind == "empty" for kind, _ in self.roles.values())
        self._mesh: tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None, int | None, np.ndarray] | None = None

    def _reader(self) -> pyvista.OpenFOAMReader:
        reader = openfoam_reader(self.case)
        reader.cell_to_point_creation = True
        return reader

    def times(self) -> list[float]:
        return [float(t) for t in self._reader().time_values]

    def mesh(self) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None, int | None, np.ndarray]:
        """(points (N, d), cells, kept 3D point ids or None, empty axis or None, node_type (N,))."""
        if self._mesh is None:
            reader = self._reader()
            reader.enable_all_patch_arrays()
            times = reader.time_values
            if not times:
                raise InputError(f"{self.case}: no time directories with fields")
            reader.set_active_time_value(times[0])
            blocks: Any = reader.read()
            inner = blocks["internalMesh"]
            points = np.asarray(inner.points, dtype=np.float64)
            cells = {VTK_TO_MESHIO.get(int(k), f"vtk_type_{int(k)}"): np.asarray(v) for k, v in inner.cells_dict.items()}
            kept, axis = None, None
            if self.two_d:
                axis = slab_axis(points)
                if axis is None:
                    raise InputError(f"{self.case}: the case has empty patches but its points do not lie on two planes along x, y or z")
                points, cells, kept = flatten_slab(points, cells, axis, str(self.case))
            node_type = self._node_types(blocks, np.asarray(inner.points), kept)
            self._mesh = (points, cells, kept, axis, node_type)
        return self._mesh

    def _node_types(self, blocks: Any, points3d: np.ndarray, kept: np.ndarray | None) -> np.ndarray:
        index = point_index(points3d)
        to_out = np.arange(len(points3d)) if kept is None else np.full(len(points3d), -1)
        if kept is not None:
            to_out[kept] = np.arange(len(kept))
        node_type = np.zeros(len(points3d) if kept is None else len(kept), dtype=np.int64)
        boundary = blocks["boundary"] if "boundary" in blocks.keys() else None
        for role in (OUTFLOW, INFLOW, WALL):  # later roles win on shared points
            for patch, (_, r) in self.roles.items():
                if r != role or boundary is None or patch not in boundary.keys():
                    continue
                ids = lookup(index, np.asarray(boundary[patch].points))
                ids = to_out[ids[ids >= 0]]
                node_type[ids[ids >= 0]] = role
        return node_type

    def step(self, t: float, reader: pyvista.OpenFOAMReader | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
        """The point fields at time `t` ({name: (N,) or (N, d)}) and the fields skipped."""
        _, _, kept, axis, _ = self.mesh()
        reader = reader or self._reader()
        reader.set_active_time_value(t)
        inner = reader.read()["internalMesh"]
        if inner is None:
            raise InputError(f"{self.case}: time {t:g} has no internal mesh")
        return _point_fields(inner, kept, axis)

    def series(self, fields: Sequence[str] | None = None) -> MeshSeries:
        """Every time directory as one trajectory, keeping the fields written at every time."""
        points, cells, _, _, node_type = self.mesh()
        reader = self._reader()
        times = [float(t) for t in reader.time_values]
        try:
            read = [self.step(t, reader) for t in times]
        except InputError:
            raise
        except Exception as e:  # VTK raises several types for broken cases
            raise InputError(f"{self.case}: the OpenFOAM reader failed ({type(e).__name__}: {str(e)[:200]})") from None
        keep, steps, notes = _common_fields(read, fields)
        series = _series(points, cells, steps, np.asarray(times), [f"{self.case} (time {t:g})" for t in times], keep, node_type)
        series.notes = self.notes + notes
        return series


def read_openfoam(case: str | Path, fields: Sequence[str] | None = None, velocity: str = "U") -> MeshSeries:
    """An OpenFOAM case as one trajectory (see the module docstring for the conventions)."""
    return FoamCase(case, velocity).series(fields)


def _series_file(folder: Path) -> tuple[list[Path], list[float | None]]:
    """foamToVTK's steps: from `<name>.vtm.series` (default output) or the legacy `<name>_<k>.vtk` files."""
    series = sorted(folder.glob("*.vtm.series"))
    if series:
        listed = read_series(series[0])
        return [folder / name for name in listed], list(listed.values())
    legacy = _numbered([p for p in folder.glob("*.vtk") if p.is_file()])
    if not legacy:
        raise InputError(f"{folder}: no foamToVTK output (no *.vtm.series, no legacy *.vtk files)")
    return legacy, [None] * len(legacy)


def _internal(path: Path) -> pyvista.DataSet:
    """The internal mesh of one foamToVTK step: the `internal` dataset of a .vtm, or a legacy .vtk."""
    import pyvista

    if path.suffix == ".vtm":
        try:
            node = next(e for e in ET.parse(path).getroot().iter("DataSet") if e.get("name") == "internal")
        except (ET.ParseError, StopIteration, OSError):
            raise InputError(f"{path}: no `internal` dataset in this multiblock file") from None
        path = path.parent / str(node.get("file"))
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return pyvista.read(str(path))
    except Exception as e:  # VTK raises several types for malformed files
        raise InputError(f"{path}: not a readable VTK file ({type(e).__name__}: {str(e)[:200]})") from None


def point_index(points: np.ndarray) -> dict[bytes, int]:
    """Each point's row, keyed by its float32 coordinates (readers copy coordinates exactly)."""
    return {p.tobytes(): i for i, p in enumerate(np.asarray(points, dtype=np.float32))}


def lookup(index: dict[bytes, int], points: np.ndarray) -> np.ndarray:
    """The rows in `index` of `points` (N,), -1 where a point is not there."""
    return np.array([index.get(p.tobytes(), -1) for p in np.asarray(points, dtype=np.float32)], dtype=np.int64)


def _match_types(points: np.ndarray, case_points: np.ndarray, case_types: np.ndarray) -> np.ndarray | None:
    """The case's node types at `points` (matched by float32 coordinates), or None if any point is not the case's."""
    if points.shape != case_points.shape:
        return None
    ids = lookup(point_index(case_points), points)
    return None if (ids < 0).any() else case_types[ids]


def read_foamtovtk(folder: str | Path, fields: Sequence[str] | None = None, dt: float | None = None, velocity: str = "U") -> MeshSeries:
    """foamToVTK output (a case's `VTK/` folder, or the case itself) as one trajectory.

    A one-cell-thick slab becomes a 2D mesh. Node types come from the case's patches when the
    folder sits in a case (its parent has constant/polyMesh); otherwise they are left to the
    mesh store's inference from the boundary and the flow.
    """
    folder = Path(folder)
    if (folder / "VTK").is_dir():
        folder = folder / "VTK"
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of foamToVTK output")
    files, times = _series_file(folder)
    steps, stamped, ref = [], [], None
    for f, t in zip(files, times):
        mesh = _internal(f)
        ref = mesh if ref is None else ref
        if mesh.n_points != ref.n_points:
            raise InputError(f"{f}: {mesh.n_points} points, but {files[0]} has {ref.n_points}; a series shares one mesh")
        if t is None and "TimeValue" in mesh.field_data.keys():
            t = time_value(mesh.field_data["TimeValue"])
        stamped.append(t)
        steps.append(mesh)
    assert ref is not None
    times_out, time_notes = untimed(stamped, dt, str(folder))
    points = np.asarray(ref.points, dtype=np.float64)
    cells = {VTK_TO_MESHIO.get(int(k), f"vtk_type_{int(k)}"): np.asarray(v) for k, v in ref.cells_dict.items()}
    axis = slab_axis(points)
    kept = None
    if axis is not None:
        points, cells, kept = flatten_slab(points, cells, axis, str(files[0]))
    node_type, notes = None, list(time_notes)
    if (folder.parent / "constant" / "polyMesh").is_dir():
        foam = FoamCase(folder.parent, velocity)
        case_points, _, _, _, case_types = foam.mesh()
        notes += foam.notes
        node_type = _match_types(points, case_points, case_types)
        if node_type is None:
            notes.append(f"the points of {files[0]} are not the case's: node types inferred from the boundary instead")
    keep, chosen, field_notes = _common_fields([_point_fields(mesh, kept, axis) for mesh in steps], fields)
    series = _series(points, cells, chosen, np.asarray(times_out), [str(f) for f in files], keep, node_type)
    series.notes = notes + field_notes
    return series
