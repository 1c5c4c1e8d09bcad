"""The C client (surrogate/online/c) compiled with the system compiler against libzmq, and a
small C heat-equation solver streaming through it into a real server over loopback."""

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import surrogate.online
from surrogate.online.buffer import FIFOBuffer
from surrogate.online.server import StreamServer
from tests.online.test_stream import wait_for

C_DIR = Path(surrogate.online.__file__).parent / "c"
CC = shutil.which("cc") or shutil.which("gcc")
HAVE_ZMQ = Path("/usr/include/zmq.h").exists()


@pytest.fixture(scope="module")
def heat_example(tmp_path_factory):
    if CC is None or not HAVE_ZMQ:
        pytest.skip("needs a C compiler and libzmq's headers (Debian: apt-get install libzmq3-dev; .ci/run installs it)")
    exe = tmp_path_factory.mktemp("c") / "heat_example"
    cmd = [
        CC,
        "-std=c11",
        "-D_DEFAULT_SOURCE",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O2",
        "-o",
        str(exe),
        str(C_DIR / "heat_example.c"),
        str(C_DIR / "surrogate_client.c"),
        "-lzmq",
        "-lm",
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def test_c_solver_streams_the_exact_discrete_heat_solution(heat_example):
    n_steps, kappa, n = 30, 0.01, 64
    with StreamServer(FIFOBuffer(capacity_bytes=10**7)) as server:
        run = subprocess.run(
            [str(heat_example), server.data_address, server.control_address, "heat-c", str(n_steps), str(kappa)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        wait_for(lambda: server.metrics()["received"] == n_steps + 1)
        m = server.metrics()
        assert m["pairs"] == n_steps and m["registered"] == 1 and m["finished"] == 1 and m["bad"] == {}
        x = np.arange(n) / n
        dt = 0.2 / n**2 / kappa
        growth = 1 - 4 * 0.2 * math.sin(math.pi / n) ** 2  # the explicit scheme's factor for the sin(2 pi x) mode
        for k in range(1, n_steps + 1):
            prev, cur = server.sample()
            assert (prev.step, cur.step) == (k - 1, k) and cur.simulation_id == "heat-c"
            assert cur.parameters == {"kappa": kappa} and cur.time == pytest.approx(k * dt, rel=1e-14)
            np.testing.assert_allclose(cur.fields["u"], growth**k * np.sin(2 * np.pi * x), atol=1e-13)


def test_c_client_reports_a_missing_server(heat_example):
    run = subprocess.run(
        [str(heat_example), "tcp://127.0.0.1:9", "tcp://127.0.0.1:9", "x", "1", "0.01"], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 1 and "no answer to 'register'" in run.stderr
