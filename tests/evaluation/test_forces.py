"""Pressure force on a body: -closed integral of p n equals -integral of grad p over the body."""

import numpy as np
import pytest

from surrogate.errors import InputError
from surrogate.evaluation.forces import force_coefficients, pressure_force


def circle(radius: float, n: int, clockwise: bool = False) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = radius * np.stack([np.cos(t), np.sin(t)], 1)
    return ring[::-1] if clockwise else ring


@pytest.mark.parametrize("clockwise", [False, True])
def test_a_linear_pressure_pushes_with_gradient_times_area(clockwise):
    """p = -(a x + b y) gives F = (a, b) pi R^2 (divergence theorem), whatever the ring's orientation."""
    r, a, b = 0.3, 2.0, -0.5
    ring = circle(r, 400, clockwise)
    surface = circle(r + 0.01, 2000)  # the fluid cells next to the wall
    p = -(a * surface[:, 0] + b * surface[:, 1])
    f = pressure_force(ring, surface, p)
    np.testing.assert_allclose(f, np.array([a, b]) * np.pi * r**2 * (r + 0.01) / r, rtol=2e-3)
    cd, cl = force_coefficients(ring, surface, p, speed=2.0)
    assert cd == pytest.approx(f[0] / (0.5 * 4.0 * 2 * r), rel=1e-6) and cl == pytest.approx(f[1] / (0.5 * 4.0 * 2 * r), rel=1e-6)
    assert np.allclose(pressure_force(ring, surface, np.full(len(surface), 7.0)), 0, atol=1e-12)  # a uniform pressure: no force


def test_bad_input():
    with pytest.raises(InputError, match="expected ring"):
        pressure_force(np.zeros((2, 2)), np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(InputError, match="positive reference speed"):
        force_coefficients(circle(1, 8), circle(1.1, 8), np.zeros(8), 0.0)
