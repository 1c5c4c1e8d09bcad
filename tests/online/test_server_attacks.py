"""The stream server against hostile and careless senders, with real sockets on 127.0.0.1:
every attack is counted by its reason and the server goes on to serve a good client; memory
stays within its configured bounds whatever is sent; a full buffer costs no CPU."""

import json
import resource
import threading
import time

import numpy as np
import zmq

from surrogate.online.buffer import FIFOBuffer, MelissaBuffer, ReservoirBuffer
from surrogate.online.client import OnlineClient
from surrogate.online.protocol import StepMessage, encode
from surrogate.online.server import StreamServer
from tests.online.test_stream import wait_for


def _push(address: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.connect(address)
    return sock


def _step(step: int, n: int = 16, sim: str = "good", **params) -> list:
    return encode(StepMessage(sim, step, 0.1 * step, {"u": np.full(n, float(step), np.float32)}, params))


def test_attacks_on_both_sockets_are_counted_and_a_good_client_is_served():
    capacity = 1 << 16
    with StreamServer(FIFOBuffer(capacity_bytes=capacity)) as server:
        push = _push(server.data_address)
        push.send_multipart(_step(0, sim="first", nu=1.0), copy=False)  # fixes the schema: u (16,) float32, parameter nu
        header = {"protocol": 1, "simulation_id": "x", "step": 0, "time": 0.0, "parameters": {}}
        attacks = [
            [b"[" * 30_000 + b"]" * 30_000],  # nesting that would exhaust json's recursion
            [
                json.dumps({**header, "fields": [{"name": "u", "dtype": "float32", "shape": [16]}]}).replace("0.0", "1e400").encode(),
                b"\0" * 64,
            ],
            [json.dumps({**header, "fields": [{"name": "u", "dtype": "float32", "shape": [10**30]}]}).encode(), b"\0" * 64],
            [json.dumps({**header, "fields": [{"name": "u", "dtype": "float32", "shape": [-4]}]}).encode(), b""],
            [json.dumps({**header, "fields": [{"name": "u", "dtype": "float32", "shape": [1] * 70}]}).encode(), b"\0" * 4],
            _step(1, n=capacity // 8 + 256, sim="big", nu=1.0),  # a pair larger than the buffer
            _step(1, n=32, sim="other-grid", nu=1.0),  # valid, on another grid: the schema refuses it
            _step(1, sim="no-parameter"),
            _step(1, sim="nan-parameter", nu=float("nan")),
            [b"\xff\xfe not utf-8"],
        ]
        for frames in attacks:
            push.send_multipart(frames, copy=False)
        req = zmq.Context.instance().socket(zmq.REQ)
        req.setsockopt(zmq.RCVTIMEO, 30_000)
        req.connect(server.control_address)
        for frames in (
            [json.dumps({"op": "register", "simulation_id": ["unhashable"], "protocol": 1}).encode()],
            [b"{}", b"a second frame"],
            [b"not json"],
            [json.dumps({"op": {"x": 1}, "simulation_id": "s"}).encode()],
            [json.dumps({"op": "register", "simulation_id": "y" * 10_000}).encode()],
            [json.dumps({"op": "done", "simulation_id": "s", "last_step": "soon"}).encode()],
        ):
            req.send_multipart(frames)
            assert json.loads(req.recv()).get("ok") in (False, True)  # every request gets an answer
        req.close(0)
        with OnlineClient(server.data_address, server.control_address, "good", {"nu": 2.0}) as client:
            for step in range(5):
                client.send(step, 0.1 * step, {"u": np.full(16, float(step), np.float32)})
        wait_for(lambda: server.metrics()["pairs"] == 4 and "good" in server.finished)
        bad = server.metrics()["bad"]
        for reason in (
            "header nests too deep",
            "bad time",
            "frame size",
            "bad shape",
            "data: a pair larger than the buffer",
            "schema: other dtype or shape",
            "schema: other parameters",
            "bad parameters",
            "header is not JSON",
            "control: malformed request",
            "control: frame count",
        ):
            assert bad.get(reason, 0) >= 1, (reason, bad)
        assert server._thread.is_alive()
        pairs = [server.sample() for _ in range(4)]
        assert sorted((a.step, b.step) for a, b in pairs) == [(0, 1), (1, 2), (2, 3), (3, 4)]
        push.close(0)


def test_memory_stays_within_its_bounds_under_many_simulations():
    """1200 simulation ids of 3 steps each while training draws: the buffer, the last steps kept
    and the tables stay within their limits; the process's peak memory grows by less than 200 MB."""
    step_bytes = 1024 * 4
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    for buffer in (ReservoirBuffer(capacity_bytes=64 * step_bytes), MelissaBuffer(capacity_bytes=64 * step_bytes)):
        with StreamServer(buffer, max_simulations=400, max_open_bytes=32 * step_bytes) as server:
            stop = threading.Event()

            def train(stop: threading.Event = stop, server: StreamServer = server) -> None:  # draws as training does
                while not stop.is_set():
                    try:
                        server.sample()
                    except IndexError:
                        stop.wait(0.001)

            trainer = threading.Thread(target=train, daemon=True)
            trainer.start()
            push = _push(server.data_address)
            for sim in range(1200):
                for step in range(3):
                    push.send_multipart(_step(step, n=1024, sim=f"sim-{sim}"), copy=False)
            wait_for(lambda: server.metrics()["bad"].get("data: too many simulations", 0) == 800 * 3, timeout=120)
            stop.set()
            trainer.join()
            m = server.metrics()
            assert buffer.fill_bytes <= buffer.capacity_bytes and m["pairs"] > 0, type(buffer).__name__
            assert m["open_bytes"] <= 32 * step_bytes and m["evicted_last_steps"] > 0
            assert len(server.last_seen) <= 400 and len(server._seen) <= 400
            push.close(0)
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    print(f"peak memory growth over 2 x 1200 simulations: {growth_mb:.1f} MB")
    assert growth_mb < 200, growth_mb


def test_reservoir_holds_its_byte_capacity_whatever_the_sample_sizes():
    buf = ReservoirBuffer(capacity_bytes=1000, seed=0)
    buf.put("tiny", 10)  # a tiny first sample used to size the slots: 100 of them
    for i in range(50):
        buf.put(i, 100 + (i % 3) * 150)
        assert buf.fill_bytes <= 1000


def test_melissa_never_discards_an_undrawn_sample():
    buf = MelissaBuffer(capacity_bytes=400, seed=0)
    assert [buf.put(i, 100) for i in range(5)] == [True, True, True, True, False]  # full, nothing drawn: backpressure
    drawn = buf.get()
    assert buf.put(10, 100)  # replaces a drawn sample, the only one
    held = sorted(e.item for e in buf.entries)
    assert drawn not in held and 10 in held and len(held) == 4
    undrawn = {e.item for e in buf.entries if e.uses == 0}
    for i in range(20, 60):  # training draws one per arrival: every arrival replaces an already-drawn sample
        buf.get()
        undrawn_before = {e.item for e in buf.entries if e.uses == 0}
        if buf.put(i, 100):
            assert undrawn_before <= {e.item for e in buf.entries}
    assert undrawn is not None and buf.fill_bytes <= 400


def test_a_full_buffer_costs_no_cpu():
    """A FIFO full of pairs and a sender blocked on it: the server thread sleeps until a draw."""
    with StreamServer(FIFOBuffer(capacity_bytes=4 * 2 * 64), rcvhwm=1) as server:
        done = threading.Event()

        def send():
            with OnlineClient(server.data_address, server.control_address, "s", sndhwm=1) as c:
                for step in range(40):
                    c.send(step, 0.1 * step, {"u": np.zeros(16, np.float32)})
            done.set()

        threading.Thread(target=send, daemon=True).start()
        wait_for(lambda: len(server.buffer) == 4)
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(1.0)
        cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        print(f"CPU while the buffer is full: {cpu:.4f} of a core")
        assert cpu < 0.05, f"{cpu:.3f} of a core while the buffer is full"
        for _ in range(39):  # training drains: every step arrives and the sender finishes
            wait_for(lambda: len(server.buffer) > 0)
            server.sample()
        assert done.wait(60) and server.metrics()["pairs"] == 39 and "s" in server.finished
