"""The canonical mesh store: one mesh, B trajectories, HDF5 written atomically, read lazily,
with an XDMF sidecar that opens the same file in ParaView.

Layout (The Well's spirit, on a mesh):

    @dataset_name @grid_type='unstructured' @n_spatial_dims @n_trajectories @source
    @surrogate_format_version @notes (what the converter skipped or assumed)
    geometry/    points (N, d)   cells/<type> (M, k)   node_type (N,)  @node_types
    dimensions/  time (T,)
    t0_fields/   @field_names   <name> (B, T, N)
    t1_fields/   @field_names   <name> (B, T, N, D)

Channels seen by models are the t0 fields in order, then each t1 field's components
named `<field>_<x|y|z>`. The sidecar `<stem>.xdmf` holds one temporal collection per
trajectory, reading each step of each field through a virtual dataset `xdmf/<field>/<b>_<k>`
(no copy; vectors padded to 3 components), which every ParaView XDMF reader opens.

Shapes:
    read(traj)  (T, N, C) float32
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from surrogate.datasets.atomic import atomic_path
from surrogate.datasets.mesh import MeshSeries
from surrogate.datasets.mesh_graph import NODE_TYPES, infer_node_types
from surrogate.datasets.xdmf_views import slice_view
from surrogate.errors import InputError

FORMAT_VERSION = 1
XDMF_TOPOLOGY = {
    "triangle": "Triangle",
    "quad": "Quadrilateral",
    "tetra": "Tetrahedron",
    "hexahedron": "Hexahedron",
    "wedge": "Wedge",
    "pyramid": "Pyramid",
}
XDMF_MIXED_ID = {"triangle": 4, "quad": 5, "tetra": 6, "pyramid": 7, "wedge": 8, "hexahedron": 9}


def xdmf_mixed(cells: dict[str, np.ndarray]) -> np.ndarray:
    """Several cell types as XDMF's one Mixed array: [type id, node ids...] per cell."""
    return np.concatenate([np.concatenate([np.full((len(c), 1), XDMF_MIXED_ID[t]), c], axis=1).ravel() for t, c in cells.items()])


def _same_mesh(a: MeshSeries, b: MeshSeries) -> bool:
    return (
        a.points.shape == b.points.shape
        and np.array_equal(a.points, b.points)
        and a.cells.keys() == b.cells.keys()
        and all(np.array_equal(a.cells[k], b.cells[k]) for k in a.cells)
    )


def resolve_node_types(series: MeshSeries, velocity: str | None = "velocity") -> np.ndarray:
    """The file's node types, or ones inferred from its boundary (and `velocity` field)."""
    if series.node_type is not None:
        return series.node_type
    v = series.fields.get(velocity) if velocity else None
    v = v if v is not None and v.ndim == 3 and v.shape[2] == series.points.shape[1] else None
    return infer_node_types(series.cells, series.points, v)


def write_mesh_store(path: str | Path, trajectories: Sequence[MeshSeries], name: str = "", velocity: str | None = "velocity") -> Path:
    """Write trajectories that share one mesh as a mesh store plus its XDMF sidecar."""
    path = Path(path)
    if not trajectories:
        raise InputError(f"{path}: nothing to write")
    first = trajectories[0]
    for s in trajectories[1:]:
        if not _same_mesh(first, s):
            raise InputError(f"{s.source}: its mesh differs from {first.source}'s; write one store per mesh")
        if sorted(s.fields) != sorted(first.fields) or s.n_steps != first.n_steps:
            raise InputError(f"{s.source}: fields {sorted(s.fields)} x {s.n_steps} steps differ from {first.source}'s")
    for s in trajectories:
        bad = {f: a.shape for f, a in s.fields.items() if a.ndim < 2 or a.shape[:2] != (s.n_steps, s.n_nodes)}
        if bad:
            raise InputError(f"{s.source}: fields {bad} do not have (steps, nodes) = ({s.n_steps}, {s.n_nodes}) leading axes")
    node_type = resolve_node_types(first, velocity)
    scalars = sorted(f for f, a in first.fields.items() if a.ndim == 2)
    vectors = sorted(f for f, a in first.fields.items() if a.ndim == 3)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h:
            h.attrs.update(
                dataset_name=name or path.stem,
                grid_type="unstructured",
                n_spatial_dims=first.points.shape[1],
                n_trajectories=len(trajectories),
                source=first.source,
                surrogate_format_version=FORMAT_VERSION,
                notes=list(dict.fromkeys(n for s in trajectories for n in s.notes)),
            )
            g = h.create_group("geometry")
            g["points"] = first.points
            for t, c in first.cells.items():
                g[f"cells/{t}"] = c
            if len(first.cells) > 1:
                g["xdmf_mixed"] = xdmf_mixed(first.cells)
            g["node_type"] = node_type
            g.attrs["node_types"] = list(NODE_TYPES)
            h["dimensions/time"] = first.times
            for group, names in (("t0_fields", scalars), ("t1_fields", vectors)):
                grp = h.create_group(group)
                grp.attrs["field_names"] = names
                for f in names:
                    data = np.stack([s.fields[f] for s in trajectories])  # (B, T, N[, D])
                    grp.create_dataset(f, data=data, chunks=(1, 1, *data.shape[2:]))
            _write_views(h)
    write_xdmf_sidecar(path)
    return path


def _attributes(f: str, shape: tuple[int, ...]) -> list[tuple[str, str, int | None]]:
    """The sidecar's attributes of one field (B, T, N[, D]): (name, XDMF type, component or None)."""
    if len(shape) == 3:
        return [(f, "Scalar", None)]
    if shape[3] in (2, 3):  # a vector, padded to XDMF's 3 components
        return [(f, "Vector", None)]
    return [(f"{f}_{c}", "Scalar", c) for c in range(shape[3])]


def _write_views(h: h5py.File) -> None:
    """`xdmf/<attribute>/<trajectory>_<step>`: each step of each field as a virtual dataset."""
    for group in ("t0_fields", "t1_fields"):
        for f in h[group].attrs["field_names"]:
            ds = h[f"{group}/{f}"]
            for name, kind, comp in _attributes(f, ds.shape):
                for b in range(ds.shape[0]):
                    for k in range(ds.shape[1]):
                        index = (b, k) if comp is None else (b, k, slice(None), comp)
                        slice_view(h, f"xdmf/{name}/{b}_{k}", ds, index, 3 if kind == "Vector" else None)


def write_xdmf_sidecar(path: str | Path) -> Path:
    """`<stem>.xdmf` beside the store: one temporal collection per trajectory, reading the
    store's `xdmf/` views (plain datasets, which ParaView's default reader reads)."""
    path = Path(path)
    with h5py.File(path, "r") as h:
        pts = h["geometry/points"]
        n, d = pts.shape
        n_cells = sum(h[f"geometry/cells/{t}"].shape[0] for t in h["geometry/cells"])
        if "xdmf_mixed" in h["geometry"]:
            topology, conn, conn_dims = "Mixed", "geometry/xdmf_mixed", f"{h['geometry/xdmf_mixed'].shape[0]}"
        else:
            t_name = next(iter(h["geometry/cells"]))
            shape = h[f"geometry/cells/{t_name}"].shape
            topology, conn, conn_dims = XDMF_TOPOLOGY[t_name], f"geometry/cells/{t_name}", f"{shape[0]} {shape[1]}"
        times = h["dimensions/time"][()]
        attributes = [a for g in ("t0_fields", "t1_fields") for f in h[g].attrs["field_names"] for a in _attributes(f, h[f"{g}/{f}"].shape)]
        b_count = int(h.attrs["n_trajectories"])
    h5 = path.name
    grids = []
    for b in range(b_count):
        steps = []
        for k, t in enumerate(times):
            attrs = [
                f'<Attribute Name="{name}" AttributeType="{kind}" Center="Node">'
                f'<DataItem Dimensions="{n if kind == "Scalar" else f"{n} 3"}" NumberType="Float" Precision="4" Format="HDF">'
                f"{h5}:/xdmf/{name}/{b}_{k}</DataItem></Attribute>"
                for name, kind, _ in attributes
            ]
            steps.append(
                f'<Grid Name="traj{b}_step{k}" GridType="Uniform"><Time Value="{t:.10g}"/>'
                f'<Topology TopologyType="{topology}" NumberOfElements="{n_cells}">'
                f'<DataItem Dimensions="{conn_dims}" NumberType="Int" Precision="8" Format="HDF">{h5}:/{conn}</DataItem></Topology>'
                f'<Geometry GeometryType="{"XY" if d == 2 else "XYZ"}">'
                f'<DataItem Dimensions="{n} {d}" NumberType="Float" Precision="8" Format="HDF">{h5}:/geometry/points</DataItem></Geometry>'
                '<Attribute Name="node_type" AttributeType="Scalar" Center="Node">'
                f'<DataItem Dimensions="{n}" NumberType="Int" Precision="8" Format="HDF">{h5}:/geometry/node_type</DataItem></Attribute>'
                + "".join(attrs)
                + "</Grid>"
            )
        grids.append(f'<Grid Name="trajectory{b}" GridType="Collection" CollectionType="Temporal">{"".join(steps)}</Grid>')
    text = '<?xml version="1.0"?>\n<Xdmf Version="3.0"><Domain>' + "".join(grids) + "</Domain></Xdmf>\n"
    sidecar = path.with_suffix(".xdmf")
    with atomic_path(sidecar) as tmp:
        tmp.write_text(text)
    return sidecar


class MeshStore:
    """Lazy reader of a mesh store."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such mesh store")
        try:
            with h5py.File(self.path, "r") as h:
                if h.attrs.get("grid_type") != "unstructured":
                    raise InputError(f"{self.path}: not a mesh store (grid_type {h.attrs.get('grid_type')!r}, expected 'unstructured')")
                self.points = h["geometry/points"][()]
                self.cells = {t: h[f"geometry/cells/{t}"][()] for t in h["geometry/cells"]}
                self.node_type = h["geometry/node_type"][()]
                self.times = h["dimensions/time"][()]
                self.n_trajectories = int(h.attrs["n_trajectories"])
                self.notes = [str(n) for n in h.attrs.get("notes", [])]
                self.scalars = [str(f) for f in h["t0_fields"].attrs["field_names"]]
                self.vectors = [(str(f), h[f"t1_fields/{f}"].shape[3]) for f in h["t1_fields"].attrs["field_names"]]
                expect = (self.n_trajectories, len(self.times), len(self.points))
                for group, names in (("t0_fields", self.scalars), ("t1_fields", [f for f, _ in self.vectors])):
                    for f in names:
                        shape = h[f"{group}/{f}"].shape
                        if shape[:3] != expect:
                            raise InputError(
                                f"{self.path}: {group}/{f} has shape {shape}; expected (trajectories, steps, nodes) = {expect} first"
                            )
        except (OSError, KeyError, IndexError) as e:
            raise InputError(f"{self.path}: not a readable mesh store ({type(e).__name__}: {e})") from None

    @property
    def channel_names(self) -> list[str]:
        return self.scalars + [f"{f}_{'xyz'[i]}" for f, d in self.vectors for i in range(d)]

    @property
    def n_steps(self) -> int:
        return len(self.times)

    @property
    def dt(self) -> float:
        return float(self.times[1] - self.times[0]) if len(self.times) > 1 else 1.0

    def read(self, traj: int, channels: Sequence[str] | None = None) -> np.ndarray:
        """Trajectory `traj` as (T, N, C) float32, channels as `channel_names` (or the chosen ones)."""
        if not 0 <= traj < self.n_trajectories:
            raise InputError(f"{self.path}: trajectory {traj} out of range [0, {self.n_trajectories})")
        with h5py.File(self.path, "r") as h:
            parts = [h[f"t0_fields/{f}"][traj][..., None] for f in self.scalars]
            parts += [h[f"t1_fields/{f}"][traj] for f, _ in self.vectors]
        data = np.concatenate(parts, axis=-1).astype(np.float32)
        if channels is None:
            return data
        missing = [c for c in channels if c not in self.channel_names]
        if missing:
            raise InputError(f"{self.path}: no channel(s) {missing}; the store has {self.channel_names}")
        return data[..., [self.channel_names.index(c) for c in channels]]


def convert_mesh(
    fmt: str,
    src: str | Path,
    dst: str | Path,
    fields: Sequence[str] | None = None,
    velocity: str | None = None,
    dt: float | None = None,
) -> list[Path]:
    """Read `src` in format `fmt` and write mesh stores: `dst` when every trajectory shares one
    mesh, else `<dst stem>_<k>.h5`, one per distinct mesh (MeshGraphNet files vary the mesh).
    `velocity` defaults to `U` for OpenFOAM formats and `velocity` otherwise; what the reader
    skipped or assumed is kept in the store's `@notes`."""
    from surrogate.datasets.mesh import read_mesh

    velocity = velocity or ("U" if fmt in ("openfoam", "foamtovtk") else "velocity")
    series = read_mesh(fmt, src, fields, dt, velocity)
    groups: list[list[MeshSeries]] = []
    for s in series:
        for g in groups:
            if _same_mesh(g[0], s):
                g.append(s)
                break
        else:
            groups.append([s])
    dst = Path(dst)
    if len(groups) == 1:
        return [write_mesh_store(dst, groups[0], velocity=velocity)]
    return [
        write_mesh_store(dst.with_name(f"{dst.stem}_{k}{dst.suffix}"), g, name=f"{dst.stem}_{k}", velocity=velocity)
        for k, g in enumerate(groups)
    ]
