"""Watching an uninstrumented solver's output directory while it writes, into a real server."""

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import meshio
import numpy as np
import pytest

from surrogate.errors import InputError
from surrogate.online.buffer import FIFOBuffer
from surrogate.online.client import OnlineClient
from surrogate.online.server import StreamServer
from surrogate.online.watch import DirectoryWatcher
from tests.online.test_stream import wait_for

FRAMES = sorted((Path(__file__).parents[3] / "shared" / "data" / "meshes" / "cylinder_flow_vtu").glob("*.vtu"))
FOAM_ENV = Path("/usr/share/openfoam/etc/bashrc")
CAVITY = Path("/usr/share/doc/openfoam-examples/examples/incompressible/icoFoam/cavity/cavity")


def watch_while(writer, directory, kind, server, **kw):
    """Run `writer()` in a thread while a watcher streams `directory`; returns steps sent."""
    done = threading.Event()
    thread = threading.Thread(target=lambda: (writer(), done.set()))
    with OnlineClient(server.data_address, server.control_address, f"watch-{kind}") as client:
        watcher = DirectoryWatcher(directory, kind, client, settle_s=0.2, **kw)
        thread.start()
        sent = watcher.run(done.is_set, poll_s=0.05)
    thread.join()
    return sent


def drain(server, n):
    wait_for(lambda: server.metrics()["pairs"] == n)
    return [server.sample() for _ in range(n)]


@pytest.mark.skipif(not FRAMES, reason="../shared/data/meshes/cylinder_flow_vtu is not beside the checkout")
def test_growing_vtu_series_is_streamed_step_by_step(tmp_path):
    def write():
        for f in FRAMES:
            tmp = tmp_path / (f.stem + ".part")  # written under another name, then renamed, as solvers do
            shutil.copy(f, tmp)
            tmp.rename(tmp_path / f.name)
            time.sleep(0.15)

    with StreamServer(FIFOBuffer(capacity_bytes=10**7)) as server:
        assert watch_while(write, tmp_path, "vtu", server, dt=0.5) == len(FRAMES)
        pairs = drain(server, len(FRAMES) - 1)
    for prev, cur in pairs:
        ref = meshio.read(FRAMES[cur.step])
        assert cur.step == prev.step + 1 and cur.time == 0.5 * cur.step
        np.testing.assert_array_equal(cur.fields["velocity_x"], ref.point_data["velocity_x"])


def test_hdf5_files_appearing_are_streamed(tmp_path):
    def write():
        for k in range(4):
            with h5py.File(tmp_path / f"out_{k}.h5", "w") as h:
                h["p"] = np.full((5, 3), float(k))
                h["label"] = np.arange(3)  # not a float field: not sent
            time.sleep(0.1)

    with StreamServer(FIFOBuffer(capacity_bytes=10**6)) as server:
        assert watch_while(write, tmp_path, "hdf5", server, dt=0.1) == 4
        pairs = drain(server, 3)
    assert [float(q.fields["p"][0, 0]) for _, q in pairs] == [1.0, 2.0, 3.0] and set(pairs[0][1].fields) == {"p"}


def test_bad_watch_arguments(tmp_path):
    with pytest.raises(InputError, match="watch kind 'vtk'"):
        DirectoryWatcher(tmp_path, "vtk", client=None)
    with pytest.raises(InputError, match="is not a directory"):
        DirectoryWatcher(tmp_path / "missing", "vtu", client=None)


@pytest.mark.skipif(
    not (FOAM_ENV.exists() and CAVITY.exists()), reason="OpenFOAM (Debian package openfoam, with its tutorials) is not installed"
)
def test_running_openfoam_cavity_is_streamed(tmp_path):
    case = tmp_path / "cavity"
    shutil.copytree(CAVITY, case)
    control = (case / "system" / "controlDict").read_text()
    control = control.replace("endTime         0.5;", "endTime         0.05;").replace("writeInterval   20;", "writeInterval   2;")
    (case / "system" / "controlDict").write_text(control)

    def run_solver():
        subprocess.run(
            ["bash", "-c", f"source {FOAM_ENV} && cd {case} && blockMesh > log.blockMesh && icoFoam > log.icoFoam"], check=True, timeout=120
        )

    with StreamServer(FIFOBuffer(capacity_bytes=10**7)) as server:
        sent = watch_while(run_solver, case, "openfoam", server, fields=["U", "p"])
        pairs = drain(server, sent - 1)
    assert sent == 6  # t = 0, 0.01, ..., 0.05
    times = [0.0] + [q.time for _, q in pairs]
    np.testing.assert_allclose(times, [0.0, 0.01, 0.02, 0.03, 0.04, 0.05])
    u = pairs[-1][1].fields["U"]
    assert u.shape == (441, 2)  # 2D point data
    # the convention of `convert mesh --format openfoam`: a model trained on the converted case takes the stream
    from surrogate.datasets.openfoam import read_openfoam

    converted = read_openfoam(case)
    np.testing.assert_array_equal(u, converted.fields["U"][-1])
    x, y = converted.points.T
    lid = np.isclose(y, 0.1) & (x > 1e-6) & (x < 0.1 - 1e-6)
    assert lid.sum() == 19 and (u[lid, 0] == 1.0).all()  # the moving wall's prescribed velocity
    assert 0.05 < float(np.abs(u[converted.node_type == 0, 0]).max()) < 1.0  # the lid drives the flow inside


@pytest.mark.skipif(not FRAMES, reason="../shared/data/meshes/cylinder_flow_vtu is not beside the checkout")
def test_watch_command_streams_a_finished_series(tmp_path):
    for f in FRAMES[:3]:
        shutil.copy(f, tmp_path / f.name)
    with StreamServer(FIFOBuffer(capacity_bytes=10**7)) as server:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "surrogate",
                "watch",
                str(tmp_path),
                "--data",
                server.data_address,
                "--control",
                server.control_address,
                "--sim-id",
                "cyl",
                "--field",
                "velocity_x",
                "--idle-s",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "sent 3 steps" in run.stdout
        pairs = drain(server, 2)
    assert set(pairs[0][1].fields) == {"velocity_x"} and server.metrics()["finished"] == 1
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "surrogate",
            "watch",
            str(tmp_path),
            "--data",
            "tcp://127.0.0.1:9",
            "--control",
            "tcp://127.0.0.1:9",
            "--kind",
            "vtk",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "watch kind 'vtk'" in bad.stdout
