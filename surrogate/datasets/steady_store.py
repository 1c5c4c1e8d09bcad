"""The steady point-cloud layout of the mesh store: one sample per geometry, no time axis.

Steady flows over varying geometry have a different point set per sample, so samples are
groups rather than a shared `geometry/points`:

    attrs              format_version, layout = "steady_point_clouds", field_names,
                       param_names, n_spatial_dims, n_samples (+ the writer's attributes)
    scalars/params     (B, P) global parameters (inflow speed, angle of attack, ...)
    samples/<k>/points     (N_k, d)   sample points (mesh nodes or cell centres)
    samples/<k>/sdf        (N_k,)     signed distance to the no-slip walls, > 0 in the fluid
    samples/<k>/fields     (N_k, C)   steady fields, channels in `field_names` order
    samples/<k>/node_type  (N_k,)     interior 0, wall 1, inflow 2, outflow 3
    samples/<k>/surface    (N_k,)     1 on the obstacle's surface band (surface pressure error)
    samples/<k>/rings/<r>  (K_r, d)   closed obstacle boundaries (query checks, plotting)
    samples/<k>/walls      (W, 2, d)  further wall segments in the SDF (a channel's sides)
    samples/<k>/xdmf/<field>  (N_k,)  one channel of `fields` as a virtual dataset (no copy)
    samples/<k>/xdmf/vertices (N_k,)  0 .. N_k - 1, the sidecar's vertex cells

An XDMF sidecar (`<stem>.xdmf`) lists every sample as a Polyvertex grid of a temporal
collection (sample k at "time" k), so ParaView steps through the samples; it reads the
`xdmf/` views, as ParaView's default XDMF reader skips hyperslab items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from surrogate.datasets.atomic import atomic_path
from surrogate.datasets.geometry import check_ring
from surrogate.datasets.xdmf_views import slice_view
from surrogate.errors import InputError

FORMAT_VERSION = 1
LAYOUT = "steady_point_clouds"


@dataclass
class SteadySample:
    """One steady flow on its own point cloud (shapes in the module docstring)."""

    points: np.ndarray
    sdf: np.ndarray
    fields: np.ndarray
    node_type: np.ndarray
    surface: np.ndarray
    params: np.ndarray
    rings: list[np.ndarray] = field(default_factory=list)
    walls: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 2)))

    def check(self, where: str, n_fields: int, n_params: int) -> None:
        n = len(self.points)
        if self.points.ndim != 2 or self.points.shape[1] not in (2, 3) or n == 0:
            raise InputError(f"{where}: points of shape {self.points.shape}; expected (N, 2) or (N, 3) with N > 0")
        for name, a, shape in (
            ("sdf", self.sdf, (n,)),
            ("fields", self.fields, (n, n_fields)),
            ("node_type", self.node_type, (n,)),
            ("surface", self.surface, (n,)),
            ("params", self.params, (n_params,)),
        ):
            if a.shape != shape:
                raise InputError(f"{where}: {name} of shape {a.shape}; expected {shape}")
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise InputError(f"{where}: {name} holds {int((~np.isfinite(a)).sum())} NaN/Inf values")
        for r, ring in enumerate(self.rings):
            check_ring(ring, f"{where}: ring {r}")
        if self.walls.ndim != 3 or self.walls.shape[1:] != (2, self.points.shape[1]):
            raise InputError(f"{where}: walls of shape {self.walls.shape}; expected (W, 2, {self.points.shape[1]}) segments")


def write_steady_store(
    path: str | Path, samples: list[SteadySample], field_names: list[str], param_names: list[str], attrs: dict[str, Any] | None = None
) -> Path:
    """Write the samples atomically (and the XDMF sidecar); returns the store's path."""
    path = Path(path)
    if not samples:
        raise InputError(f"{path}: no samples to write")
    for k, s in enumerate(samples):
        s.check(f"sample {k}", len(field_names), len(param_names))
    dims = {s.points.shape[1] for s in samples}
    if len(dims) > 1:
        raise InputError(f"{path}: samples mix {sorted(dims)}D points")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h:
            h.attrs.update(
                {
                    "format_version": FORMAT_VERSION,
                    "layout": LAYOUT,
                    "field_names": list(field_names),
                    "param_names": list(param_names),
                    "n_spatial_dims": dims.pop(),
                    "n_samples": len(samples),
                }
            )
            h.attrs.update({k: v for k, v in (attrs or {}).items()})
            h.create_dataset("scalars/params", data=np.stack([s.params for s in samples]).astype(np.float64))
            for k, s in enumerate(samples):
                g = h.create_group(f"samples/{k:06d}")
                g["points"] = s.points.astype(np.float64)
                g["sdf"] = s.sdf.astype(np.float64)
                g["fields"] = s.fields.astype(np.float32)
                g["node_type"] = s.node_type.astype(np.int64)
                g["surface"] = s.surface.astype(np.uint8)
                for r, ring in enumerate(s.rings):
                    g[f"rings/{r}"] = ring.astype(np.float64)
                g["walls"] = s.walls.astype(np.float64)
                g["xdmf/vertices"] = np.arange(len(s.points), dtype=np.int64)  # Xdmf3 makes no cells without it
                for c, name in enumerate(field_names):
                    slice_view(h, f"samples/{k:06d}/xdmf/{name}", g["fields"], (slice(None), c))
        write_steady_sidecar(tmp, path.name)
    tmp.with_suffix(".xdmf").replace(path.with_suffix(".xdmf"))
    return path


def write_steady_sidecar(path: Path, h5_name: str) -> None:
    """`<path stem>.xdmf`: each sample a Polyvertex grid reading the store `h5_name` beside it."""
    grids = []
    with h5py.File(path, "r") as h:
        names = list(h.attrs["field_names"])
        for k, key in enumerate(sorted(h["samples"])):
            n, d = h[f"samples/{key}/points"].shape

            def item(ds: str, dims: object, typ: str = "Float", prec: int = 8, key: str = key) -> str:
                head = f'<DataItem Dimensions="{dims}" NumberType="{typ}" Precision="{prec}" Format="HDF">'
                return f"{head}{h5_name}:/samples/{key}/{ds}</DataItem>"

            attrs = [
                f'<Attribute Name="{a}" Center="Node">{item(a, n, "Float" if a == "sdf" else "Int", 1 if a == "surface" else 8)}'
                "</Attribute>"
                for a in ("sdf", "node_type", "surface")
            ]
            for name in names:
                attrs.append(f'<Attribute Name="{name}" Center="Node">{item(f"xdmf/{name}", n, "Float", 4)}</Attribute>')
            grids.append(
                f'<Grid Name="sample{k}" GridType="Uniform"><Time Value="{k}"/>'
                f'<Topology TopologyType="Polyvertex" NumberOfElements="{n}" NodesPerElement="1">'
                f"{item('xdmf/vertices', n, 'Int')}</Topology>"
                f'<Geometry GeometryType="{"XY" if d == 2 else "XYZ"}">{item("points", f"{n} {d}")}</Geometry>' + "".join(attrs) + "</Grid>"
            )
    text = (
        '<?xml version="1.0"?>\n<Xdmf Version="3.0"><Domain><Grid Name="samples" GridType="Collection" '
        f'CollectionType="Temporal">{"".join(grids)}</Grid></Domain></Xdmf>\n'
    )
    path.with_suffix(".xdmf").write_text(text)


class SteadyStore:
    """Reader of a steady point-cloud store; samples are read on demand."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such steady store (surrogate generate steady / convert steady)")
        try:
            with h5py.File(self.path, "r") as h:
                if h.attrs.get("layout") != LAYOUT:
                    raise InputError(f"{self.path}: not a steady point-cloud store (layout {h.attrs.get('layout')!r}, expected {LAYOUT!r})")
                self.field_names = [str(x) for x in h.attrs["field_names"]]
                self.param_names = [str(x) for x in h.attrs["param_names"]]
                self.n_dims = int(h.attrs["n_spatial_dims"])
                self.keys = sorted(h["samples"])
                self.params = h["scalars/params"][()]
                self.attrs = {k: h.attrs[k] for k in h.attrs}
        except OSError as e:
            raise InputError(f"{self.path}: not a readable HDF5 file ({e})") from None

    def __len__(self) -> int:
        return len(self.keys)

    def sample(self, k: int) -> SteadySample:
        with h5py.File(self.path, "r") as h:
            g = h[f"samples/{self.keys[k]}"]
            missing = [d for d in ("points", "sdf", "fields") if d not in g]
            if missing:
                raise InputError(f"{self.path}: sample {k} has no {missing}; a steady sample needs points, sdf and fields")
            rings = [g[f"rings/{r}"][()] for r in sorted(g["rings"], key=int)] if "rings" in g else []
            walls = g["walls"][()] if "walls" in g else np.zeros((0, 2, self.n_dims))
            return SteadySample(
                g["points"][()],
                g["sdf"][()],
                g["fields"][()],
                g["node_type"][()],
                g["surface"][()].astype(bool),
                self.params[k],
                rings,
                walls,
            )
