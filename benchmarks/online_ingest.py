"""End-to-end ingest throughput: our protocol (client -> server -> buffer) against bare pyzmq
PUSH/PULL of the same bytes, in one run, for 64^2, 256^2 and 512^2 float32 fields.

Ours includes the JSON header, validation (sizes, dtypes, finite values), dedupe and pairing
into a buffer; the bare peer only moves the raw frames. Target: ours / bare >= 0.8.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import zmq
from rich.console import Console
from rich.table import Table

from benchmarks.common import write_result
from surrogate.online.buffer import ReservoirBuffer
from surrogate.online.client import OnlineClient
from surrogate.online.server import StreamServer


def bare(field: np.ndarray, n: int) -> float:
    ctx = zmq.Context.instance()
    pull = ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 4)
    push.connect(f"tcp://127.0.0.1:{port}")
    done = threading.Event()

    def receive() -> None:
        for _ in range(n):
            pull.recv_multipart(copy=False)
        done.set()

    t = threading.Thread(target=receive)
    t0 = time.perf_counter()
    t.start()
    for _ in range(n):
        push.send(memoryview(field).cast("B"), copy=False)
    done.wait()
    elapsed = time.perf_counter() - t0
    push.close(0)
    pull.close(0)
    return n / elapsed


def ours(field: np.ndarray, n: int) -> float:
    with StreamServer(ReservoirBuffer(capacity_bytes=2 * field.nbytes * 64), rcvhwm=4) as server:
        with OnlineClient(server.data_address, server.control_address, "bench") as client:
            t0 = time.perf_counter()
            for step in range(n):
                client.send(step, float(step), {"u": field})
            while server.received < n:
                time.sleep(0.0005)
            elapsed = time.perf_counter() - t0
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 512])
    ap.add_argument("--bytes", type=float, default=200e6, help="bytes to move per size and transport")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        field = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        count = max(50, int(args.bytes / field.nbytes))
        rb = max(bare(field, count) for _ in range(args.rounds))
        ro = max(ours(field, count) for _ in range(args.rounds))
        rows.append(
            {
                "resolution": n,
                "messages": count,
                "bare_msgs_per_s": rb,
                "ours_msgs_per_s": ro,
                "bare_MB_per_s": rb * field.nbytes / 1e6,
                "ours_MB_per_s": ro * field.nbytes / 1e6,
                "ratio": ro / rb,
            }
        )
    table = Table(title="ingest throughput, loopback, best of rounds")
    for col in ("field", "bare pyzmq MB/s", "ours MB/s", "ours / bare"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['resolution']}^2", f"{r['bare_MB_per_s']:.0f}", f"{r['ours_MB_per_s']:.0f}", f"{r['ratio']:.2f}")
    table.caption = "target: ours / bare >= 0.8"
    Console().print(table)
    print(f"wrote {write_result('online_ingest', {'sizes': vars(args), 'rows': rows})}")


if __name__ == "__main__":
    main()
