"""Pressure force on an obstacle and its drag and lift coefficients, from a point-cloud field.

The force the fluid's pressure exerts on a body bounded by a closed ring is

    F = -sum_segments p(m_s) n_s |s|,

n_s the segment's unit normal pointing out of the body (into the fluid), p taken at each
segment's midpoint m_s from the nearest of the given surface points. With the kinematic
pressure (density 1), a reference speed U and chord c,

    C_D = 2 F_x / (U^2 c),   C_L = 2 F_y / (U^2 c),

x being the mean flow's direction. Viscous shear is not included (pressure drag and lift).

Shapes: ring (K, 2) closed (first point not repeated); points (N, 2); p (N,).
"""

from __future__ import annotations

import numpy as np

from surrogate.errors import InputError


def pressure_force(ring: np.ndarray, points: np.ndarray, p: np.ndarray) -> np.ndarray:
    """F (2,) on the body bounded by `ring`, p sampled from the nearest `points`."""
    ring, points, p = (np.asarray(a, dtype=np.float64) for a in (ring, points, p))
    if ring.ndim != 2 or ring.shape[1] != 2 or len(ring) < 3 or points.ndim != 2 or points.shape[1] != 2 or p.shape != points.shape[:1]:
        raise InputError(f"pressure_force: expected ring (K>=3, 2), points (N, 2), p (N,); got {ring.shape}, {points.shape}, {p.shape}")
    if len(points) == 0:
        raise InputError("pressure_force: no surface points to take the pressure from")
    a, b = ring, np.roll(ring, -1, axis=0)
    seg = b - a  # (K, 2)
    area2 = float(np.sum(a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1]))  # twice the signed area: > 0 counter-clockwise
    normal = np.stack([seg[:, 1], -seg[:, 0]], axis=1) * np.sign(area2)  # outward, |normal| = segment length
    mid = 0.5 * (a + b)
    nearest = np.argmin(((mid[:, None] - points[None]) ** 2).sum(-1), axis=1)
    return -(p[nearest, None] * normal).sum(0)


def force_coefficients(ring: np.ndarray, points: np.ndarray, p: np.ndarray, speed: float) -> tuple[float, float]:
    """(C_D, C_L) of the pressure force, with the chord the ring's largest extent."""
    chord = float(np.max(np.linalg.norm(ring[:, None] - ring[None], axis=-1)))
    if not speed > 0 or chord == 0:
        raise InputError(f"force_coefficients: need a positive reference speed and chord, got {speed} and {chord}")
    fx, fy = pressure_force(ring, points, p)
    q = 0.5 * speed**2 * chord
    return float(fx / q), float(fy / q)
