"""Steady flows around obstacles: the solver's pressure and the steady-sample generator."""

import numpy as np
import pytest

from surrogate.errors import InputError
from surrogate.generate.steady import SteadyGenConfig, draw_samples, generate_steady, solve_batch
from surrogate.solvers.incompressible2d import channel, parabolic


@pytest.mark.parametrize("ny", [8, 16])
def test_poiseuille_pressure_gradient(ny):
    """Fully developed channel flow: dp/dx = -12 nu U / H^2, to second order in the grid."""
    nu, u_mean = 0.1, 1.0
    solver = channel(2 * ny, ny, 2.0, 1.0, profile=parabolic, dt=10.0, max_substep=1.0)
    state = solver.init(u_mean, nu)
    u, v = solver.unpack(state.fields)
    u = u.clone()
    u[:, 1:-1] = u_mean * parabolic(solver.y_c)  # start near developed; 10 diffusion times settle the discrete profile
    state = solver.step(state.evolve(solver.pack(u, v), state.time))
    p = solver.pressure(state)[0]
    dpdx = ((p[1:] - p[:-1]) / solver.dx)[ny:].mean()  # the downstream half, past the inflow columns
    error = abs(float(dpdx) / (-12 * nu * u_mean) - 1)
    assert error < {8: 0.025, 16: 0.007}[ny]  # 0.0228 and 0.0058: O(dy^2), 3.9x smaller on the finer grid


def lift(p: np.ndarray, solid: np.ndarray, dx: float) -> float:
    """Pressure force on a staircase body along +y: fluid cells below solid cells push up, above push down."""
    below = ~solid[:, :-1] & solid[:, 1:]  # fluid cell (i, j) under solid (i, j + 1)
    above = solid[:, :-1] & ~solid[:, 1:]
    return float((p[:, :-1][below]).sum() * dx - (p[:, 1:][above]).sum() * dx)


def test_steady_flows_around_symmetric_and_lifting_obstacles():
    """One batch: an ellipse at zero angle on the centreline, and a NACA 0024 at +12 and -12 degrees.

    The ellipse's flow is mirror symmetric (u, p even, v odd about the centreline) and its
    front pressure exceeds its back pressure (drag); the airfoil lifts at +12 degrees and the
    -12 degree flow is its mirror image, so the lift flips sign exactly.
    """
    from surrogate.datasets.geometry import ellipse_ring, naca_ring, place_ring

    cfg = SteadyGenConfig(n_samples=3, nx=48, ny=24, tol=1e-3)
    centre = tuple(cfg.centre)
    rings = [
        place_ring(ellipse_ring(0.175, 0.08), centre, 0.0),
        place_ring(naca_ring("0024", 0.35), centre, 12.0),
        place_ring(naca_ring("0024", 0.35), centre, -12.0),
    ]
    u, v, p, solid, t = solve_batch(cfg, rings, [1.0, 1.0, 1.0])
    assert t < cfg.max_time and (solid.sum((1, 2)) > 5).all()
    np.testing.assert_allclose(u[0], u[0][:, ::-1], atol=1e-8)
    np.testing.assert_allclose(v[0], -v[0][:, ::-1], atol=1e-8)
    np.testing.assert_allclose(p[0], p[0][:, ::-1], atol=1e-8)
    j = cfg.ny // 2
    cols = np.flatnonzero(solid[0][:, j])
    assert p[0][cols[0] - 1, j] > p[0][cols[-1] + 1, j] + 0.1  # stagnation ahead, low pressure behind
    dx = cfg.length / cfg.nx
    up, down = lift(p[1], solid[1], dx), lift(p[2], solid[2], dx)
    assert up > 0.05 and down == pytest.approx(-up, rel=1e-6)
    np.testing.assert_allclose(v[1], -v[2][:, ::-1], atol=1e-8)


def test_generated_store_holds_consistent_samples(tmp_path):
    from surrogate.datasets.steady_store import SteadyStore

    cfg = SteadyGenConfig(n_samples=3, nx=32, ny=16, batch=3, chord=0.3, centre=[0.6, 0.5])
    path = generate_steady(cfg, tmp_path / "steady.h5")
    store = SteadyStore(path)
    assert len(store) == 3 and store.field_names == ["u", "v", "p"] and store.param_names == ["velocity", "angle"]
    assert (tmp_path / "steady.xdmf").is_file()
    for k in range(3):
        s = store.sample(k)
        assert (s.sdf > 0).all() and s.surface.any() and len(s.rings) == 1
        # Every surface point sits within a cell diagonal of the obstacle.
        from surrogate.datasets.geometry import signed_distance

        assert signed_distance(s.points[s.surface], s.rings).max() < 1.5 * np.hypot(2 / 32, 1 / 16)
        # No-slip: the speed next to the walls is small against the inflow.
        assert np.abs(s.fields[s.surface, :2]).mean() < 0.6 * s.params[0]


def test_unsteady_or_bad_settings_are_refused():
    with pytest.raises(InputError, match="shapes"):
        SteadyGenConfig(shapes=["square"])
    with pytest.raises(InputError, match="centre"):
        SteadyGenConfig(centre=[0.1, 0.5])
    cfg = SteadyGenConfig(n_samples=1, nx=32, ny=16, max_time=0.5)
    ((ring, speed, _),) = draw_samples(cfg)
    with pytest.raises(InputError, match="did not settle within max_time 0.5"):
        solve_batch(cfg, [ring], [speed])
