"""The body-fitted Taylor-Hood solver: exactness, the DFG cylinder benchmark, bad input.

Coarse meshes here; the fine-mesh figures are `python -m benchmarks.dfg_cylinder`
(benchmarks/results/dfg_cylinder.json).
"""

from __future__ import annotations

import numpy as np
import pytest
from skfem import Basis, ElementTriP2, Functional, MeshTri, MeshTri2

from surrogate.errors import InputError
from surrogate.solvers.cylinder_mesh import CylinderChannel, MeshSpec, cylinder_channel_mesh
from surrogate.solvers.dfg import REFERENCE, in_band, parabolic_inflow, periodic_2d2, steady_2d1
from surrogate.solvers.navier_stokes_fem import NavierStokesFEM

# High-accuracy 2D-1 values (Schaefer & Turek's bands are centred on them).
LIFT_2D1, DP_2D1 = 0.010618948, 0.117520167


def test_curved_mesh_carries_the_exact_fluid_area():
    """The P2 geometry puts the cylinder's edge midpoints on the circle: the fluid area is exact
    to O(h^4), where the polygon of the same vertices is off by 2e-5."""
    mesh = cylinder_channel_mesh(spec=MeshSpec(n_cylinder=48))
    area = Functional(lambda w: 1.0 + 0 * w.x[0]).assemble(Basis(mesh, ElementTriP2(), intorder=6))
    exact = 2.2 * 0.41 - np.pi * 0.05**2
    assert abs(area - exact) < 1e-7, area - exact
    assert {k: len(v) > 0 for k, v in mesh.boundaries.items()} == dict.fromkeys(("inflow", "outflow", "walls", "cylinder"), True)
    assert len(mesh.boundaries["cylinder"]) == 48


def _channel(length: float, height: float, inflow_sides) -> MeshTri2:  # type: ignore[no-untyped-def]
    linear = MeshTri.init_tensor(np.linspace(0, length, 11), np.linspace(0, height, 5))
    return MeshTri2.from_mesh(linear).with_boundaries(
        {
            "inflow": inflow_sides,
            "outflow": lambda x: np.isclose(x[0], length),
            "walls": lambda x: np.isclose(x[1], 0) | (np.isclose(x[1], height) & ~inflow_sides(x)),
        }
    )


def test_poiseuille_flow_is_exact():
    """Plane Poiseuille flow is quadratic, so P2/P1 holds it exactly, steady and after time steps."""
    length, height, peak, nu = 1.0, 0.4, 1.5, 0.01
    mesh = _channel(length, height, lambda x: np.isclose(x[0], 0))
    profile = lambda y: 4 * peak * y * (height - y) / height**2  # noqa: E731
    solver = NavierStokesFEM(mesh, nu, profile, dt=0.05, no_slip=("walls",), body="walls")
    exact_u = profile(solver.nodes[1])
    steady = solver.steady()
    assert np.abs(steady.velocity[0] - exact_u).max() < 1e-12
    assert np.abs(steady.velocity[1]).max() < 1e-12
    # The pressure falls linearly to 0 at the outflow: dp/dx = -nu 8 U_m / H^2.
    x = mesh.p[0, : mesh.nvertices]
    np.testing.assert_allclose(steady.pressure, nu * 8 * peak / height**2 * (length - x), atol=1e-12)
    state = solver.step(solver.step(steady))
    assert np.abs(state.velocity[0] - exact_u).max() < 1e-12


def test_residual_force_is_the_exact_wall_shear():
    """Couette flow u = U y / H (the top wall and the inflow carry the velocity): the force on
    the lower wall from the momentum residual is the shear nu U L / H, with its sign."""
    length, height, speed, nu = 1.0, 0.4, 2.0, 0.01
    mesh = _channel(length, height, lambda x: np.isclose(x[0], 0) | np.isclose(x[1], height))
    solver = NavierStokesFEM(mesh, nu, lambda y: speed * y / height, dt=0.05, no_slip=("walls",), body="walls")
    for state in (s := solver.steady(), solver.step(solver.step(s))):
        assert np.abs(state.velocity[0] - speed * solver.nodes[1] / height).max() < 1e-12
        np.testing.assert_allclose(state.force, [nu * speed * length / height, 0.0], atol=1e-12)


def test_dfg_2d1_drag_in_band_and_lift_and_pressure_converge():
    """Test 2D-1 (Re = 20). The drag is in the paper's band from 16 cylinder edges on; lift and
    pressure difference converge to the reference values under refinement."""
    coarse, fine = steady_2d1(MeshSpec(n_cylinder=16)), steady_2d1(MeshSpec(n_cylinder=64))
    for r in (coarse, fine):
        assert in_band(r.drag, REFERENCE["2D-1"]["drag"]), r
    # Measured: lift 0.00978 -> 0.01065, pressure difference 0.11870 -> 0.11778.
    assert abs(fine.lift - LIFT_2D1) < abs(coarse.lift - LIFT_2D1) / 5
    assert abs(fine.pressure_difference - DP_2D1) < abs(coarse.pressure_difference - DP_2D1) / 3
    assert in_band(fine.lift, REFERENCE["2D-1"]["lift"]), fine


def test_dfg_2d2_shedding_on_a_coarse_mesh():
    """Test 2D-2 (Re = 100) on a coarse mesh (24 cylinder edges, 8.6k dofs) and time step 0.005:
    the Strouhal number and the maximum drag are in the paper's bands, the maximum lift within
    3% of 1 (measured: St 0.3002, drag 3.2260, lift 0.9795, 36 s on 2 cores). The fine-mesh
    figures, all three in band, are the benchmark's."""
    spec = MeshSpec(n_cylinder=24, h_max=0.06)
    r = periodic_2d2(spec, dt=0.005, spinup_dt=0.01, spinup_time=3.0, measure_time=2.0, periods=1)
    assert r.drift < 0.01, r.drift  # the cycle has settled after the change of time step
    assert in_band(r.strouhal, REFERENCE["2D-2"]["strouhal"]), r.strouhal
    assert in_band(r.drag_max, REFERENCE["2D-2"]["drag_max"]), r.drag_max
    assert abs(r.lift_max - 1.0) < 0.03, r.lift_max


def test_bad_input_is_named():
    with pytest.raises(InputError, match="n_cylinder"):
        MeshSpec(n_cylinder=4)
    with pytest.raises(InputError, match="must lie inside the channel"):
        CylinderChannel(centre=(0.2, 0.39))
    with pytest.raises(InputError, match="grade"):
        MeshSpec(grade=0)
    mesh = cylinder_channel_mesh(spec=MeshSpec(n_cylinder=16, h_max=0.1))
    with pytest.raises(InputError, match="viscosity"):
        NavierStokesFEM(mesh, 0.0, parabolic_inflow(0.3))
    with pytest.raises(InputError, match=r"no boundary tagged \['flap'\]"):
        NavierStokesFEM(mesh, 1e-3, parabolic_inflow(0.3), body="flap")
    with pytest.raises(InputError, match="use n_cylinder >= 19"):
        periodic_2d2(MeshSpec(n_cylinder=16))
    with pytest.raises(InputError, match="dt <= spinup_dt"):
        periodic_2d2(MeshSpec(n_cylinder=32), dt=0.02, spinup_dt=0.01)
    with pytest.raises(InputError, match="even n_cylinder"):
        steady_2d1(MeshSpec(n_cylinder=33))
