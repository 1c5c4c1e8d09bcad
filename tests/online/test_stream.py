"""A real solver process streams into a real server over loopback ZeroMQ."""

import subprocess
import sys
import textwrap
import time

import numpy as np
import zmq

from surrogate.online.buffer import FIFOBuffer, ReservoirBuffer
from surrogate.online.client import OnlineClient
from surrogate.online.protocol import StepMessage, encode
from surrogate.online.server import StreamServer

CLIENT = textwrap.dedent(
    """
    import sys
    from surrogate.online.client import OnlineClient, stream
    from surrogate.solvers.ns2d import NS2D
    data, control, sim, seed = sys.argv[1:5]
    solver = NS2D(16, dt=0.1)
    state = solver.init_random(1, 1e-3, seed=int(seed))
    with OnlineClient(data, control, sim, {"viscosity": 1e-3}) as c:
        stream(solver, state, 8, c)
    """
)


def wait_for(cond, timeout=20.0):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError
        time.sleep(0.02)


def test_solver_processes_stream_pairs_into_the_buffer():
    with StreamServer(ReservoirBuffer(capacity_bytes=10**7)) as server:
        procs = [
            subprocess.Popen([sys.executable, "-c", CLIENT, server.data_address, server.control_address, f"sim-{i}", str(i)])
            for i in range(2)
        ]
        assert all(p.wait(timeout=60) == 0 for p in procs)
        wait_for(lambda: server.metrics()["received"] == 18)
        m = server.metrics()
        assert m["pairs"] == 16 and m["registered"] == 2 and m["finished"] == 2 and m["bad"] == {}
        prev, cur = server.sample()
        assert cur.step == prev.step + 1 and cur.simulation_id == prev.simulation_id
        assert cur.fields["vorticity"].shape == (16, 16)
        # A duplicate and a malformed message are counted, not fatal.
        with OnlineClient(server.data_address, server.control_address, "sim-0", {"viscosity": 1e-3}) as c:  # the stream's schema
            c.send(3, 0.3, {"vorticity": np.zeros((16, 16), np.float32)})
            c.send(9, 0.9, {"vorticity": np.full((16, 16), np.nan, np.float32)})
        wait_for(lambda: server.metrics()["duplicates"] == 1 and sum(server.metrics()["bad"].values()) == 1)


def test_full_buffer_applies_backpressure():
    """With a FIFO holding 2 pairs and nobody training, the sender blocks on its high-water mark."""
    frame = np.zeros(262144, np.float32)  # 1 MB per message
    pair_bytes = 2 * frame.nbytes
    with StreamServer(FIFOBuffer(capacity_bytes=2 * pair_bytes), rcvhwm=1) as server:
        push = zmq.Context.instance().socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, 1)
        push.setsockopt(zmq.SNDTIMEO, 500)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(server.data_address)
        sent = 0
        try:
            for step in range(200):
                push.send_multipart(encode(StepMessage("s", step, float(step), {"u": frame})), copy=False)
                sent += 1
        except zmq.Again:
            pass
        assert sent < 40  # blocked after a few MB in socket buffers, not 200 MB
        wait_for(lambda: server.metrics()["pairs"] == 2)
        assert server.metrics()["buffer"]["fill_fraction"] == 1.0
        server.sample()  # training consumes one pair: the stream moves again
        wait_for(lambda: server.metrics()["pairs"] == 3)
        push.close()
