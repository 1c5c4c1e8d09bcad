"""End-to-end ingest throughput: our protocol (client -> server -> buffer) against bare pyzmq
PUSH/PULL of the same bytes, in one run, for 64^2, 256^2 and 512^2 float32 fields.

The sender runs in its own process, as a solver does, for both transports. Ours includes the
client's batching of small steps (up to 4 MB per message), the JSON header, validation
(sizes, dtypes, finite values), dedupe and pairing into a reservoir of 64 pairs; the bare
peer moves one raw frame per step and keeps nothing. Throughput is timed at the receiver,
from the first step received to the last.

Two numbers per size: `steady`, once the buffer is full and replacing (after 4x its pair
capacity in untimed warm-up steps: the state of a server that runs for days), and `first
fill`, from an empty buffer (each kept step lands in memory the process never touched: page
faults a steady state does not have). Target: ours / bare >= 0.8.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np
import zmq
from rich.console import Console
from rich.table import Table

from benchmarks.common import write_result
from surrogate.online.buffer import ReservoirBuffer
from surrogate.online.server import StreamServer

PAIRS = 64  # the reservoir's capacity
BATCH_BYTES = 4 << 20  # the client's default


def field_of(n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)


def send_bare(address: str, n: int, count: int) -> None:
    field = field_of(n)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 4)
    push.connect(address)
    for _ in range(count):
        push.send(memoryview(field).cast("B"), copy=False)
    push.close(linger=-1)
    ctx.term()  # every zero-copy frame is out before the field is freed


def send_ours(data: str, control: str, n: int, count: int, batch_bytes: int) -> None:
    from surrogate.online.client import OnlineClient

    field = field_of(n)
    with OnlineClient(data, control, "bench", batch_bytes=batch_bytes) as client:
        for step in range(count):
            client.send(step, float(step), {"u": field})


def receive(pull: zmq.Socket, sender: mp.Process) -> None:  # type: ignore[type-arg]
    while not pull.poll(1000):
        if not sender.is_alive():
            raise RuntimeError(f"the sender exited ({sender.exitcode}) before sending everything")
    pull.recv_multipart(copy=False)


def wait_received(server: StreamServer, n: int, sender: mp.Process) -> None:
    while server.received < n:
        if sender.exitcode not in (None, 0):
            raise RuntimeError(f"the sender exited ({sender.exitcode}) before sending everything")
        time.sleep(0.0002)


def bare(n: int, count: int) -> float:
    """Steps per second through a bare PUSH/PULL pair."""
    pull = zmq.Context.instance().socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    sender = mp.get_context("spawn").Process(target=send_bare, args=(f"tcp://127.0.0.1:{port}", n, count))
    sender.start()
    receive(pull, sender)
    t0 = time.perf_counter()
    for _ in range(count - 1):
        receive(pull, sender)
    elapsed = time.perf_counter() - t0
    sender.join()
    pull.close(0)
    return (count - 1) / elapsed


def ours(n: int, count: int, warm: bool, batch_bytes: int = BATCH_BYTES) -> float:
    """Steps per second into a reservoir of PAIRS pairs; with `warm`, after filling it 4x over."""
    nbytes = n * n * 4
    first = 4 * PAIRS if warm else 1
    with StreamServer(ReservoirBuffer(capacity_bytes=2 * nbytes * PAIRS), rcvhwm=4) as server:
        args = (server.data_address, server.control_address, n, first + count, batch_bytes)
        sender = mp.get_context("spawn").Process(target=send_ours, args=args)
        sender.start()
        wait_received(server, first, sender)
        t0, start = time.perf_counter(), server.received
        wait_received(server, first + count, sender)
        elapsed = time.perf_counter() - t0
        sender.join()
    return (first + count - start) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 512])
    ap.add_argument("--bytes", type=float, default=200e6, help="bytes to move per size and transport")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        nbytes = n * n * 4
        count = max(50, int(args.bytes / nbytes))
        runs: dict[str, list[float]] = {"bare": [], "ours": [], "cold": []}
        for _ in range(args.rounds):  # interleaved, so that the machine's drifts hit all alike
            runs["bare"].append(bare(n, count))
            runs["ours"].append(ours(n, count, warm=True))
            runs["cold"].append(ours(n, 2 * PAIRS, warm=False))
        rb, ro, cold = max(runs["bare"]), max(runs["ours"]), max(runs["cold"])
        rows.append(
            {
                "resolution": n,
                "steps": count,
                "bare_steps_per_s": rb,
                "ours_steps_per_s": ro,
                "bare_MB_per_s": rb * nbytes / 1e6,
                "ours_MB_per_s": ro * nbytes / 1e6,
                "ratio": ro / rb,
                "first_fill_MB_per_s": cold * nbytes / 1e6,
                "first_fill_ratio": cold / rb,
                "rounds_MB_per_s": {k: [v * nbytes / 1e6 for v in vs] for k, vs in runs.items()},
            }
        )
    table = Table(title="ingest throughput, loopback, sender in its own process, best of rounds")
    for col in ("field", "bare pyzmq MB/s", "ours MB/s (steady)", "ours / bare", "first fill / bare"):
        table.add_column(col, justify="right")
    for r in rows:
        cells = (f"{r['bare_MB_per_s']:.0f}", f"{r['ours_MB_per_s']:.0f}", f"{r['ratio']:.2f}", f"{r['first_fill_ratio']:.2f}")
        table.add_row(f"{r['resolution']}^2", *cells)
    table.caption = "target: ours / bare >= 0.8"
    Console().print(table)
    sizes = {**vars(args), "reservoir_pairs": PAIRS, "client_batch_bytes": BATCH_BYTES, "warmup_steps": 4 * PAIRS}
    print(f"wrote {write_result('online_ingest', {'sizes': sizes, 'rows': rows})}")


if __name__ == "__main__":
    main()
