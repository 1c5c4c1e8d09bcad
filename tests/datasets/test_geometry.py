"""Obstacle geometry: rings, their checks, signed distances, boundary loops of meshes."""

import numpy as np
import pytest

from surrogate.datasets.geometry import (
    boundary_loops,
    check_ring,
    ellipse_ring,
    naca_ring,
    place_ring,
    resample_ring,
    ring_area,
    signed_distance,
)
from surrogate.errors import InputError


def test_naca_and_ellipse_areas_match_their_formulas():
    # A NACA 4-digit section's area is 0.685 t c^2 to within a percent.
    for code in ("0012", "2412", "4415"):
        ring = check_ring(naca_ring(code, 2.0), code)
        assert ring_area(ring) == pytest.approx(0.685 * int(code[2:]) / 100 * 4.0, rel=0.01)
    assert ring_area(ellipse_ring(0.3, 0.1, n=400)) == pytest.approx(np.pi * 0.03, rel=1e-3)


def test_signed_distance_of_a_circle_and_walls():
    ring = place_ring(ellipse_ring(0.2, 0.2, n=2000), (1.0, 0.5), 30.0)
    rng = np.random.default_rng(0)
    pts = rng.uniform([0.5, 0.0], [1.5, 1.0], size=(500, 2))
    exact = np.linalg.norm(pts - [1.0, 0.5], axis=1) - 0.2
    np.testing.assert_allclose(signed_distance(pts, [ring]), exact, atol=1e-5)
    walls = np.array([[[0.0, 0.0], [2.0, 0.0]], [[0.0, 1.0], [2.0, 1.0]]])
    to_wall = np.minimum(pts[:, 1], 1 - pts[:, 1])
    expected = np.where(exact < 0, exact, np.minimum(exact, to_wall))  # walls shorten distances in the fluid only
    np.testing.assert_allclose(signed_distance(pts, [ring], walls), expected, atol=1e-5)


def test_rotation_is_an_angle_of_attack():
    ring = place_ring(naca_ring("0012", 1.0), (0.0, 0.0), 10.0)
    le, te = ring[np.argmin(ring[:, 0])], ring[0]  # the trailing edge is the first vertex
    assert le[1] > te[1]  # nose up for a positive angle with the flow along +x
    assert np.degrees(np.arctan2(le[1] - te[1], te[0] - le[0])) == pytest.approx(10.0, abs=0.5)


def test_open_and_self_intersecting_boundaries_are_refused():
    with pytest.raises(InputError, match="open boundary"):
        check_ring(ellipse_ring(1, 1)[:-1], "ellipse.csv")
    bow = np.array([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0.0]])
    with pytest.raises(InputError, match=r"bow.csv: self-intersecting boundary: edge 0 \(\(0, 0\) -> \(1, 1\)\) crosses edge 2"):
        check_ring(bow, "bow.csv")
    with pytest.raises(InputError, match="NaN"):
        check_ring(np.array([[0, 0], [1, np.nan], [1, 1], [0, 0.0]]), "nan.csv")
    with pytest.raises(InputError, match="NACA code"):
        naca_ring("24x2")


def test_resampled_points_lie_on_the_ring():
    ring = naca_ring("2412", 1.0)
    pts = resample_ring(ring, 50)
    assert np.abs(signed_distance(pts, [ring])).max() < 1e-12


def quad_mesh_with_hole(nx: int = 8, ny: int = 6, hole: tuple[int, int, int, int] = (3, 5, 2, 4)) -> tuple[np.ndarray, np.ndarray]:
    """Points ((nx+1)(ny+1), 2) and quads of a unit-spaced grid with the cells i0<=i<i1, j0<=j<j1 removed."""
    x, y = np.meshgrid(np.arange(nx + 1.0), np.arange(ny + 1.0), indexing="ij")
    pts = np.stack([x.ravel(), y.ravel()], 1)
    node = lambda i, j: i * (ny + 1) + j  # noqa: E731
    i0, i1, j0, j1 = hole
    quads = [
        [node(i, j), node(i + 1, j), node(i + 1, j + 1), node(i, j + 1)]
        for i in range(nx)
        for j in range(ny)
        if not (i0 <= i < i1 and j0 <= j < j1)
    ]
    return pts, np.array(quads)


def test_boundary_loops_of_a_mesh_with_a_hole():
    from surrogate.datasets.mesh_graph import boundary_faces

    pts, quads = quad_mesh_with_hole()
    faces, _ = boundary_faces({"quad": quads}, pts)
    loops = boundary_loops(np.array(faces), pts, "mesh.vtu")
    areas = sorted(abs(ring_area(pts[np.r_[lp, lp[:1]]])) for lp in loops)
    assert areas == [pytest.approx(4.0), pytest.approx(48.0)]  # the 2 x 2 hole and the 8 x 6 outer boundary


def test_a_pinched_boundary_is_refused():
    from surrogate.datasets.mesh_graph import boundary_faces

    pts, quads = quad_mesh_with_hole(hole=(3, 4, 2, 3))
    # Remove a second cell touching the hole only at a corner: that vertex joins 4 boundary edges.
    x, y = pts[quads].mean(1).T
    quads = quads[~((x == 4.5) & (y == 3.5))]
    faces, _ = boundary_faces({"quad": quads}, pts)
    with pytest.raises(InputError, match=r"mesh.vtu: open boundary: boundary vertex \d+ at \(4, 3\) joins 4 boundary edges"):
        boundary_loops(np.array(faces), pts, "mesh.vtu")
