"""Planar obstacle geometry: closed boundary polygons, their checks and signed distances.

A boundary is a closed ring of vertices (K, 2) whose last vertex repeats the first (as
GeoJSON rings do), so an open polyline cannot pass for a shape by accident. Signed
distances are positive in the fluid (outside every obstacle) and negative inside one.

Shapes:
    ring     (K, 2)  closed: ring[0] == ring[-1]
    points   (N, 2)
    sdf      (N,)
"""

from __future__ import annotations

import numpy as np

from surrogate.errors import InputError

CHUNK = 4096


def check_ring(ring: np.ndarray, where: str) -> np.ndarray:
    """The ring as float64 (K, 2) after checking that it is closed and does not cross itself."""
    ring = np.asarray(ring, dtype=np.float64)
    if ring.ndim != 2 or ring.shape[1] != 2 or len(ring) < 4:
        raise InputError(f"{where}: a boundary is a closed ring of (x, y) vertices, at least 3 distinct; got shape {ring.shape}")
    if not np.isfinite(ring).all():
        raise InputError(f"{where}: the boundary holds NaN or Inf coordinates")
    if not np.allclose(ring[0], ring[-1], atol=1e-12 * max(1.0, float(np.abs(ring).max()))):
        raise InputError(
            f"{where}: open boundary: the last vertex {_xy(ring[-1])} does not return to the first "
            f"{_xy(ring[0])}; close the ring by repeating the first vertex"
        )
    crossing = self_intersection(ring)
    if crossing is not None:
        i, j = crossing
        raise InputError(
            f"{where}: self-intersecting boundary: edge {i} ({_xy(ring[i])} -> {_xy(ring[i + 1])}) crosses "
            f"edge {j} ({_xy(ring[j])} -> {_xy(ring[j + 1])})"
        )
    if abs(ring_area(ring)) <= 0:
        raise InputError(f"{where}: the boundary encloses no area")
    return ring


def _xy(p: np.ndarray) -> str:
    return "(" + ", ".join(f"{float(c):.6g}" for c in p) + ")"


def ring_area(ring: np.ndarray) -> float:
    """Signed area (positive when counter-clockwise), shoelace formula."""
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def _orient(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])


def self_intersection(ring: np.ndarray) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges (i, j) that touch or cross, or None."""
    a, b = ring[:-1], ring[1:]  # (K-1, 2) edge ends
    k = len(a)
    scale = float(np.abs(ring).max()) or 1.0
    eps = 1e-12 * scale * scale
    for start in range(0, k, CHUNK):
        ai, bi = a[start : start + CHUNK, None], b[start : start + CHUNK, None]  # (c, 1, 2)
        d1, d2 = _orient(ai, bi, a[None]), _orient(ai, bi, b[None])  # (c, K-1)
        d3, d4 = _orient(a[None], b[None], ai), _orient(a[None], b[None], bi)
        hit = (d1 * d2 <= eps) & (d3 * d4 <= eps)
        i = np.arange(start, min(start + CHUNK, k))[:, None]
        j = np.arange(k)[None]
        adjacent = (np.abs(i - j) <= 1) | ((i == 0) & (j == k - 1)) | ((j == 0) & (i == k - 1))
        hit &= ~adjacent & (j > i)
        # Collinear but disjoint segments pass the orientation test; keep only overlapping ones.
        hit &= _boxes_overlap(ai, bi, a[None], b[None], eps)
        if hit.any():
            ii, jj = np.argwhere(hit)[0]
            return int(ii + start), int(jj)
    return None


def _boxes_overlap(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray, b2: np.ndarray, eps: float) -> np.ndarray:
    lo1, hi1 = np.minimum(a1, b1), np.maximum(a1, b1)
    lo2, hi2 = np.minimum(a2, b2), np.maximum(a2, b2)
    return ((lo1 <= hi2 + eps) & (lo2 <= hi1 + eps)).all(-1)


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance (N,) from each point to the nearest of the segments a -> b (M, 2)."""
    e = b - a
    ee = np.maximum((e * e).sum(-1), 1e-300)
    out = np.empty(len(points))
    for s in range(0, len(points), CHUNK):
        p = points[s : s + CHUNK, None]  # (c, 1, 2)
        t = np.clip(((p - a) * e).sum(-1) / ee, 0.0, 1.0)  # (c, M)
        out[s : s + CHUNK] = np.sqrt(((p - a - t[..., None] * e) ** 2).sum(-1)).min(1)
    return out


def inside_ring(points: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Even-odd rule: does a ray from each point towards +x cross the ring an odd number of times? (N,) bool."""
    a, b = ring[:-1], ring[1:]
    out = np.empty(len(points), dtype=bool)
    for s in range(0, len(points), CHUNK):
        px, py = points[s : s + CHUNK, 0, None], points[s : s + CHUNK, 1, None]  # (c, 1)
        straddle = (a[:, 1] > py) != (b[:, 1] > py)
        dy = np.where(b[:, 1] == a[:, 1], 1.0, b[:, 1] - a[:, 1])
        x_cross = a[:, 0] + (py - a[:, 1]) / dy * (b[:, 0] - a[:, 0])
        out[s : s + CHUNK] = (straddle & (px < x_cross)).sum(1) % 2 == 1
    return out


def signed_distance(points: np.ndarray, rings: list[np.ndarray], walls: np.ndarray | None = None) -> np.ndarray:
    """Distance (N,) of each point to the nearest no-slip boundary, negative inside an obstacle.

    `rings` are closed obstacle boundaries; `walls` (W, 2, 2) are further wall segments
    (a channel's sides), which count for the distance only.
    """
    points = np.asarray(points, dtype=np.float64)
    dist = np.full(len(points), np.inf)
    inside = np.zeros(len(points), dtype=bool)
    for ring in rings:
        dist = np.minimum(dist, _segment_distance(points, ring[:-1], ring[1:]))
        inside ^= inside_ring(points, ring)
    if walls is not None and len(walls):
        dist = np.minimum(dist, _segment_distance(points, walls[:, 0], walls[:, 1]))
    return np.where(inside, -dist, dist)


def resample_ring(ring: np.ndarray, n: int) -> np.ndarray:
    """n points (n, 2) evenly spaced by arc length along the ring (the first not repeated)."""
    seg = np.sqrt((np.diff(ring, axis=0) ** 2).sum(-1))
    s = np.concatenate([[0.0], np.cumsum(seg)])
    q = np.linspace(0.0, s[-1], n, endpoint=False)
    return np.stack([np.interp(q, s, ring[:, 0]), np.interp(q, s, ring[:, 1])], axis=1)


def boundary_loops(edges: np.ndarray, points: np.ndarray, where: str) -> list[np.ndarray]:
    """Closed loops of point indices traced from a mesh's boundary edges (E, 2), each checked as a ring.

    Every boundary vertex must join exactly two boundary edges; anything else is an open or
    pinched boundary and is refused.
    """
    edges = np.asarray(edges, dtype=np.int64)
    degree = np.bincount(edges.ravel(), minlength=len(points))
    bad = np.flatnonzero((degree != 0) & (degree != 2))
    if len(bad):
        v = int(bad[0])
        raise InputError(
            f"{where}: open boundary: boundary vertex {v} at {_xy(points[v])} joins {degree[v]} boundary edges "
            f"(a closed boundary has 2 at every vertex; {len(bad)} such vertices)"
        )
    neighbours: dict[int, list[int]] = {}
    for i, j in edges:
        neighbours.setdefault(int(i), []).append(int(j))
        neighbours.setdefault(int(j), []).append(int(i))
    seen: set[int] = set()
    loops = []
    for start in neighbours:
        if start in seen:
            continue
        loop, prev, cur = [start], -1, start
        seen.add(start)
        while True:
            a, b = neighbours[cur]
            nxt = b if a == prev else a
            if nxt == start:
                break
            loop.append(nxt)
            seen.add(nxt)
            prev, cur = cur, nxt
        check_ring(points[loop + [start]], f"{where}: boundary loop through vertex {start}")
        loops.append(np.array(loop))
    return loops


def ellipse_ring(a: float, b: float, n: int = 96) -> np.ndarray:
    """Counter-clockwise ellipse with semi-axes a (along x) and b, centred at 0, (n + 1, 2)."""
    t = np.linspace(0.0, 2 * np.pi, n + 1)
    ring = np.stack([a * np.cos(t), b * np.sin(t)], axis=1)
    ring[-1] = ring[0]
    return ring


def naca_ring(code: str, chord: float = 1.0, n: int = 64) -> np.ndarray:
    """NACA 4-digit airfoil `code` (e.g. "2412") with its mid-chord at 0, counter-clockwise.

    The standard (slightly blunt) trailing edge, closed by a straight segment, so that the
    upper and lower sides never touch; cosine spacing along the chord: n points per side.
    """
    if len(code) != 4 or not code.isdigit() or int(code[2:]) == 0:
        raise InputError(f"NACA code {code!r}: expected four digits with a non-zero thickness, such as '2412'")
    m, p, t = int(code[0]) / 100, int(code[1]) / 10, int(code[2:]) / 100
    if m > 0 and p == 0:
        raise InputError(f"NACA code {code!r}: a cambered airfoil needs a non-zero camber position (second digit)")
    x = 0.5 * (1 - np.cos(np.linspace(0.0, np.pi, n + 1)))  # 0 .. 1
    yt = 5 * t * (0.2969 * np.sqrt(x) - 0.1260 * x - 0.3516 * x**2 + 0.2843 * x**3 - 0.1015 * x**4)
    if m > 0:
        yc = np.where(x < p, m / p**2 * (2 * p * x - x**2), m / (1 - p) ** 2 * (1 - 2 * p + 2 * p * x - x**2))
        dy = np.where(x < p, 2 * m / p**2 * (p - x), 2 * m / (1 - p) ** 2 * (p - x))
    else:
        yc, dy = np.zeros_like(x), np.zeros_like(x)
    th = np.arctan(dy)
    upper = np.stack([x - yt * np.sin(th), yc + yt * np.cos(th)], axis=1)
    lower = np.stack([x + yt * np.sin(th), yc - yt * np.cos(th)], axis=1)
    # From the trailing edge along the upper side to the nose, back along the lower side.
    ring = np.concatenate([upper[::-1], lower[1:], upper[-1:]])
    return (ring - [0.5, 0.0]) * chord


def place_ring(ring: np.ndarray, centre: tuple[float, float], angle_deg: float) -> np.ndarray:
    """The ring rotated clockwise by `angle_deg` (a positive angle of attack for flow along +x), then moved."""
    a = -np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return ring @ rot.T + np.asarray(centre, dtype=np.float64)
