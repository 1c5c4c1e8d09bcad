"""ParaView itself (pvpython under xvfb) opens every kind of file written for it: grid and mesh
rollout series and the XDMF sidecars of mesh and steady stores. Each is read with the reader
ParaView picks by default; every array must be there with the written values at every time
step, and the default view of it, coloured by a field, must not be blank."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from surrogate.datasets.mesh import MeshSeries
from surrogate.datasets.mesh_store import write_mesh_store
from surrogate.datasets.steady_store import SteadySample, write_steady_store
from surrogate.export.paraview import write_grid_rollout, write_mesh_rollout

DUMP = Path(__file__).with_name("paraview_dump.py")
X = np.linspace(0, 1, 8)
Y = np.linspace(0, 2, 6)
TIMES = [0.0, 0.5, 1.0]


def _grid_rollout(out: Path) -> tuple[np.ndarray, np.ndarray]:
    """pred, truth (T, 2, 8, 6): a smooth velocity field that changes with time."""
    xx, yy = np.meshgrid(X, Y, indexing="ij")
    pred = np.stack([np.stack([np.sin(np.pi * xx + t), np.cos(np.pi * yy) * (1 + t)]) for t in TIMES]).astype(np.float32)
    write_grid_rollout(out, pred, pred * 0.9, TIMES, ["velocity_x", "velocity_y"], {"x": X, "y": Y})
    return pred, pred * 0.9


def _mesh() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A 4 x 3 block of triangles on [0, 3] x [0, 2]."""
    pts = np.array([[i, j] for j in range(3) for i in range(4)], dtype=float)
    tri = [[i + 4 * j, i + 1 + 4 * j, i + 4 * (j + 1)] for j in range(2) for i in range(3)]
    tri += [[i + 1 + 4 * j, i + 1 + 4 * (j + 1), i + 4 * (j + 1)] for j in range(2) for i in range(3)]
    return pts, {"triangle": np.array(tri)}


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    """Writes one file of each kind, opens them all in one pvpython run; returns what it read."""
    pvpython = shutil.which("pvpython")
    if pvpython is None:
        pytest.skip("ParaView's pvpython is not installed (Debian package paraview; `make test` installs it as root)")
    tmp = tmp_path_factory.mktemp("paraview")
    rng = np.random.default_rng(0)
    pts, cells = _mesh()
    n = len(pts)
    written = {"grid": _grid_rollout(tmp / "grid")}
    mesh_pred = rng.standard_normal((3, 1, n))
    write_mesh_rollout(tmp / "mesh", np.c_[pts, np.zeros(n)], cells, mesh_pred, mesh_pred * 0, TIMES, ["p"])
    written["mesh"] = mesh_pred
    trajs = [
        MeshSeries(
            pts,
            cells,
            {"p": rng.standard_normal((3, n)).astype(np.float32), "U": rng.standard_normal((3, n, 2)).astype(np.float32)},
            np.array(TIMES),
            f"traj{b}",
            np.arange(n) % 4,
        )
        for b in range(2)
    ]
    write_mesh_store(tmp / "store.h5", trajs)
    written["store"] = trajs
    samples = [
        SteadySample(
            pts * (1 + k), np.ones(n), rng.standard_normal((n, 3)).astype(np.float32), np.zeros(n, np.int64), np.zeros(n, bool), np.ones(1)
        )
        for k in range(2)
    ]
    write_steady_store(tmp / "steady.h5", samples, ["U_x", "U_y", "p"], ["Re"])
    written["steady"] = samples
    jobs = [
        {"kind": "grid", "path": str(tmp / "grid" / "rollout.pvd"), "color": "velocity_pred"},
        {"kind": "mesh", "path": str(tmp / "mesh" / "rollout.pvd"), "color": "p_pred"},
        {"kind": "store", "path": str(tmp / "store.xdmf"), "color": "p"},
        {"kind": "steady", "path": str(tmp / "steady.xdmf"), "color": "p"},
    ]
    for job in jobs:
        job["npz"], job["png"] = str(tmp / f"{job['kind']}.npz"), str(tmp / f"{job['kind']}.png")
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    cmd = ([shutil.which("xvfb-run"), "-a"] if shutil.which("xvfb-run") else []) + [pvpython, str(DUMP), str(tmp / "jobs.json")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.count("read ") == len(jobs), out.stdout + out.stderr[-3000:]
    import matplotlib.image

    read = {}
    for job in jobs:
        shot = matplotlib.image.imread(job["png"])[..., :3]
        read[job["kind"]] = (dict(np.load(job["npz"])), float(shot.std()), out.stdout + out.stderr)
    return written, read


def _index(points: np.ndarray, axis_values: np.ndarray, axis: int) -> np.ndarray:
    """The grid index along `axis` of each point (the nearest grid value)."""
    return np.abs(points[:, axis, None] - axis_values[None, :]).argmin(axis=1)


def test_grid_rollout_opens_as_a_coloured_2d_image_with_vectors(opened):
    written, read = opened
    pred, truth = written["grid"]
    arrays, shot_std, _ = read["grid"]
    np.testing.assert_allclose(arrays["times"], TIMES)
    for k in range(len(TIMES)):
        p = arrays[f"{k}/0/points"]
        assert np.ptp(p[:, 2]) == 0.0 and len(p) == len(X) * len(Y)  # a flat 2D image
        i, j = _index(p, X, 0), _index(p, Y, 1)
        v = arrays[f"{k}/0/velocity_pred"]
        assert v.shape == (len(p), 3)  # one vector array, z zero
        np.testing.assert_allclose(v[:, 0], pred[k, 0, i, j], atol=1e-6)
        np.testing.assert_allclose(v[:, 1], pred[k, 1, i, j], atol=1e-6)
        np.testing.assert_allclose(arrays[f"{k}/0/velocity_true"][:, 1], truth[k, 1, i, j], atol=1e-6)
        assert not v[:, 2].any()
    assert shot_std > 0.05, "ParaView's default view of the 2D rollout is blank"


def test_mesh_rollout_opens_with_its_values(opened):
    written, read = opened
    arrays, shot_std, _ = read["mesh"]
    np.testing.assert_allclose(arrays["times"], TIMES)
    for k in range(len(TIMES)):
        np.testing.assert_allclose(arrays[f"{k}/0/p_pred"], written["mesh"][k, 0], rtol=1e-6)
        np.testing.assert_allclose(arrays[f"{k}/0/p_error"], written["mesh"][k, 0], rtol=1e-6)  # truth 0
    assert shot_std > 0.05


def test_mesh_store_sidecar_opens_every_array_in_the_default_reader(opened):
    written, read = opened
    arrays, shot_std, log = read["store"]
    assert "Skipping unrecognized array type" not in log
    np.testing.assert_allclose(arrays["times"], TIMES)
    for k in range(len(TIMES)):
        for b, traj in enumerate(written["store"]):
            np.testing.assert_array_equal(arrays[f"{k}/{b}/p"], traj.fields["p"][k])
            u = arrays[f"{k}/{b}/U"]
            np.testing.assert_array_equal(u[:, :2], traj.fields["U"][k])
            assert u.shape[1] == 3 and not u[:, 2].any()
            np.testing.assert_array_equal(arrays[f"{k}/{b}/node_type"], traj.node_type)
    assert shot_std > 0.05


def test_steady_store_sidecar_steps_through_the_samples(opened):
    written, read = opened
    arrays, shot_std, log = read["steady"]
    assert "Skipping unrecognized array type" not in log
    np.testing.assert_allclose(arrays["times"], [0, 1])
    for k, s in enumerate(written["steady"]):
        np.testing.assert_allclose(arrays[f"{k}/0/points"][:, :2], s.points)
        for c, name in enumerate(["U_x", "U_y", "p"]):
            np.testing.assert_array_equal(arrays[f"{k}/0/{name}"], s.fields[:, c])
    assert shot_std > 0.05
