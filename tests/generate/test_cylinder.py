"""`surrogate generate cylinder`: the finite-element cylinder flow as a mesh store, through the CLI."""

import numpy as np

from surrogate.datasets.mesh_store import MeshStore
from surrogate.solvers.dfg import GEOMETRY
from tests.test_cli import cli


def test_generated_cylinder_flow_is_a_mesh_store_with_its_boundary_conditions(tmp_path):
    out = tmp_path / "cyl.h5"
    res = cli("generate", "cylinder", "--out", out, "--spinup", 0.3, "--n-frames", 4, "--interval", 0.02)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "cylinder flow: 36/36 in" in res.stdout  # piped: a progress line instead of a bar
    st = MeshStore(out)
    assert st.channel_names == ["pressure", "velocity_x", "velocity_y"] and st.n_steps == 4
    np.testing.assert_allclose(st.times, [0.3, 0.32, 0.34, 0.36])
    assert (out.with_suffix(".xdmf")).is_file()
    u = st.read(0, ["velocity_x", "velocity_y"])  # (T, N, 2)
    x, y = st.points.T
    h = GEOMETRY.height
    inflow, wall, outflow = (st.node_type == k for k in (2, 1, 3))
    # node types inferred from the boundary and the flow match the channel's sides
    assert np.allclose(x[inflow], 0) and np.allclose(x[outflow], GEOMETRY.length)
    np.testing.assert_allclose(u[:, inflow, 0], np.broadcast_to(6 * y[inflow] * (h - y[inflow]) / h**2, u[:, inflow, 0].shape), atol=1e-6)
    assert np.abs(u[:, wall]).max() < 1e-6
    on_cylinder = np.hypot(x - GEOMETRY.centre[0], y - GEOMETRY.centre[1]) < GEOMETRY.radius + 1e-9
    assert on_cylinder.sum() == 24 and wall[on_cylinder].all()
    assert 0.5 < np.abs(u[:, ~wall, 0]).max() < 3.0  # a developing channel flow, not a blow-up


def test_bad_cylinder_settings_exit_2(tmp_path):
    res = cli("generate", "cylinder", "--out", tmp_path / "c.h5", "--n-cylinder", 10)
    assert res.returncode == 2 and "n_cylinder >= 19" in res.stdout
    res = cli("generate", "cylinder", "--out", tmp_path / "c.h5", "--interval", 0.015)
    assert res.returncode == 2 and "whole number of solver steps" in res.stdout
    assert not (tmp_path / "c.h5").exists()
