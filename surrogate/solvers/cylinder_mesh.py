"""Body-fitted triangulation of a channel around a circular cylinder (the DFG geometry).

Schaefer & Turek's benchmark (1996) and DeepMind's CylinderFlow use this geometry: a channel
[0, length] x [0, height] with a cylinder of `radius` at `centre`. The mesh is made by
Shewchuk's Triangle (the `triangle` package): a quality Delaunay triangulation refined until
every triangle is below the area of a size function that grows linearly with the distance from
the cylinder (`grade` per unit distance, from 2 pi r / n_cylinder on the surface up to h_max),
kept at `wake_factor` times the surface size along the wake. It is returned as a quadratic
(P2-geometry) scikit-fem mesh whose cylinder edges are curved: the edge midpoints lie on the
circle, so the isoparametric P2 mapping carries the surface to third order rather than as a
polygon.

Boundaries (scikit-fem facet tags): inflow (x = 0), outflow (x = length), walls (y = 0 and
y = height), cylinder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import triangle
from numpy.typing import NDArray
from skfem import MeshTri, MeshTri2

from surrogate.errors import InputError

# Area of an equilateral triangle of side h is AREA_PER_H2 * h^2.
AREA_PER_H2 = math.sqrt(3) / 4


@dataclass(frozen=True)
class CylinderChannel:
    """Channel and cylinder geometry; the defaults are the DFG benchmark's (metres)."""

    length: float = 2.2
    height: float = 0.41
    centre: tuple[float, float] = (0.2, 0.2)
    radius: float = 0.05

    def __post_init__(self) -> None:
        (xc, yc), r = self.centre, self.radius
        if min(self.length, self.height, r) <= 0:
            raise InputError(f"CylinderChannel: length, height and radius must be positive, got {self}")
        if not (r < xc < self.length - r and r < yc < self.height - r):
            raise InputError(
                f"CylinderChannel: the cylinder of radius {r} at {self.centre} must lie inside the channel "
                f"[0, {self.length}] x [0, {self.height}] without touching it"
            )


@dataclass(frozen=True)
class MeshSpec:
    """Resolution: n_cylinder edges on the surface, growth `grade` per unit distance, cap h_max."""

    n_cylinder: int = 64
    grade: float = 0.15
    h_max: float = 0.04
    wake_factor: float = 4.0
    wake_length: float = 1.0

    def __post_init__(self) -> None:
        if self.n_cylinder < 8:
            raise InputError(f"MeshSpec.n_cylinder: need at least 8 edges on the cylinder, got {self.n_cylinder}")
        for name in ("grade", "h_max", "wake_factor"):
            if getattr(self, name) <= 0:
                raise InputError(f"MeshSpec.{name}: must be positive, got {getattr(self, name)}")
        if self.wake_length < 0:
            raise InputError(f"MeshSpec.wake_length: must be >= 0, got {self.wake_length}")


def surface_size(geometry: CylinderChannel, spec: MeshSpec) -> float:
    """Edge length on the cylinder surface."""
    return 2 * math.pi * geometry.radius / spec.n_cylinder


def _size(x: NDArray, y: NDArray, geometry: CylinderChannel, spec: MeshSpec) -> NDArray:
    """Target edge length at the points (x, y)."""
    (xc, yc), r = geometry.centre, geometry.radius
    h0 = surface_size(geometry, spec)
    h = np.minimum(spec.h_max, h0 + spec.grade * (np.hypot(x - xc, y - yc) - r))
    in_wake = (x > xc) & (x < xc + spec.wake_length)
    wake = spec.wake_factor * h0 + spec.grade * np.maximum(0.0, np.abs(y - yc) - 2 * r)
    return np.where(in_wake, np.minimum(h, wake), h)


def cylinder_channel_mesh(geometry: CylinderChannel = CylinderChannel(), spec: MeshSpec = MeshSpec()) -> MeshTri2:
    """The graded, curved-boundary triangulation with tagged boundaries (see the module doc)."""
    (xc, yc), r = geometry.centre, geometry.radius
    n = spec.n_cylinder
    theta = 2 * math.pi * np.arange(n) / n
    circle = np.stack([xc + r * np.cos(theta), yc + r * np.sin(theta)], 1)  # (n, 2)
    box = np.array([[0.0, 0.0], [geometry.length, 0.0], [geometry.length, geometry.height], [0.0, geometry.height]])
    segments = np.concatenate([[[0, 1], [1, 2], [2, 3], [3, 0]], 4 + np.stack([np.arange(n), (np.arange(n) + 1) % n], 1)])
    pslg = {"vertices": np.concatenate([box, circle]), "segments": segments, "holes": [[xc, yc]]}
    tri = triangle.triangulate(pslg, f"pq32a{AREA_PER_H2 * spec.h_max**2:.12f}")
    for _ in range(12):  # refine until every triangle is below its target area
        p, t = tri["vertices"], tri["triangles"]  # (N, 2), (E, 3)
        centroid = p[t].mean(1)  # (E, 2)
        target = AREA_PER_H2 * _size(centroid[:, 0], centroid[:, 1], geometry, spec) ** 2
        e1, e2 = p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]]
        area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
        if bool((area <= 1.5 * target).all()):
            break
        tri = triangle.triangulate({**tri, "holes": pslg["holes"], "triangle_max_area": target}, "rpq32a")
    linear = MeshTri(np.ascontiguousarray(tri["vertices"].T), np.ascontiguousarray(tri["triangles"].T))
    boundary = linear.boundary_facets()
    midpoint = linear.p[:, linear.facets[:, boundary]].mean(1)  # (2, boundary facets)
    surface = boundary[np.hypot(midpoint[0] - xc, midpoint[1] - yc) < r]  # chords lie inside the circle
    quadratic = MeshTri2.from_mesh(linear)  # nodes: the vertices, then one midpoint per facet (edge)
    on_circle = np.concatenate([linear.facets[:, surface].ravel(), linear.nvertices + surface])
    nodes = quadratic.doflocs.copy()  # (2, vertices + edge midpoints)
    offset = nodes[:, on_circle] - np.array([[xc], [yc]])
    nodes[:, on_circle] = np.array([[xc], [yc]]) + r * offset / np.hypot(*offset)
    tol = 1e-9 * max(geometry.length, geometry.height)
    return MeshTri2(nodes, quadratic.t).with_boundaries(
        {
            "inflow": lambda x: np.abs(x[0]) < tol,
            "outflow": lambda x: np.abs(x[0] - geometry.length) < tol,
            "walls": lambda x: (np.abs(x[1]) < tol) | (np.abs(x[1] - geometry.height) < tol),
            "cylinder": lambda x: np.hypot(x[0] - xc, x[1] - yc) < r + 0.5 * surface_size(geometry, spec),
        }
    )
