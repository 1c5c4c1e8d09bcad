"""The training side of a stream: a PULL socket for data, a REP socket for control.

A background thread receives step messages, validates them (`protocol.decode`), drops
duplicates by (simulation id, step), and turns consecutive steps of a simulation into
training pairs (step s -> step s + 1) in the buffer. When a FIFO/FIRO buffer is full the
thread stops reading the data socket, so ZeroMQ's high-water marks block the solvers
(backpressure) instead of growing memory. Bad messages are counted by reason and logged
with their sender; they never stop the server. Sockets bind to 127.0.0.1 unless told.

Control requests (JSON over REQ/REP): {"op": "register", "simulation_id", "protocol"},
{"op": "heartbeat", "simulation_id"}, {"op": "done", "simulation_id"}.

`state_dict()` / `load_state_dict()` save and restore the buffer's pairs, the steps seen and
the finished simulations, so that a server restarted from a training checkpoint drops the
steps it already has and the launcher skips the simulations that finished.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from typing import Any

import numpy as np
import torch
import zmq

from surrogate.online.buffer import AbstractBuffer
from surrogate.online.protocol import PROTOCOL_VERSION, ProtocolError, StepMessage, decode

log = logging.getLogger(__name__)


def pack_message(m: StepMessage) -> dict[str, Any]:
    """A StepMessage as plain values and tensors (what `torch.load(weights_only=True)` reads)."""
    return {
        "simulation_id": m.simulation_id,
        "step": m.step,
        "time": m.time,
        "parameters": dict(m.parameters),
        "fields": {k: torch.from_numpy(np.array(a)) for k, a in m.fields.items()},
    }


def unpack_message(d: dict[str, Any]) -> StepMessage:
    return StepMessage(
        d["simulation_id"],
        int(d["step"]),
        float(d["time"]),
        {k: t.numpy() for k, t in d["fields"].items()},
        {k: float(v) for k, v in d["parameters"].items()},
    )


class StreamServer:
    """Receives steps into `buffer` on a background thread. Use as a context manager."""

    def __init__(self, buffer: AbstractBuffer, host: str = "127.0.0.1", rcvhwm: int = 8) -> None:
        self.buffer, self.host, self.rcvhwm = buffer, host, rcvhwm
        self.lock = threading.Lock()
        self.bad: Counter[str] = Counter()
        self.received = self.duplicates = self.pairs = 0
        self.bytes_received = 0
        self.registered: set[str] = set()
        self.finished: set[str] = set()
        self.last_seen: dict[str, float] = {}
        self._seen: set[tuple[str, int]] = set()
        self._last: dict[str, StepMessage] = {}
        self._stop = threading.Event()
        self._ctx = zmq.Context.instance()
        self._data = self._ctx.socket(zmq.PULL)
        self._data.setsockopt(zmq.RCVHWM, rcvhwm)
        self.data_port = self._data.bind_to_random_port(f"tcp://{host}")
        self._control = self._ctx.socket(zmq.REP)
        self.control_port = self._control.bind_to_random_port(f"tcp://{host}")
        self._thread = threading.Thread(target=self._run, name="stream-server", daemon=True)
        self._t0 = time.perf_counter()

    @property
    def data_address(self) -> str:
        return f"tcp://{self.host}:{self.data_port}"

    @property
    def control_address(self) -> str:
        return f"tcp://{self.host}:{self.control_port}"

    def __enter__(self) -> StreamServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._data.close(0)
        self._control.close(0)

    def _control_reply(self, raw: bytes) -> dict[str, Any]:
        try:
            req = json.loads(raw)
            op, sim = req["op"], req["simulation_id"]
        except (ValueError, KeyError, TypeError):
            self.bad["control: malformed request"] += 1
            return {"ok": False, "error": "malformed control request"}
        self.last_seen[sim] = time.monotonic()
        if op == "register":
            if req.get("protocol") != PROTOCOL_VERSION:
                self.bad["control: protocol version"] += 1
                return {"ok": False, "error": f"protocol {req.get('protocol')!r}, server speaks {PROTOCOL_VERSION}"}
            self.registered.add(sim)
        elif op == "done":
            self.finished.add(sim)
        elif op != "heartbeat":
            return {"ok": False, "error": f"unknown op {op!r}"}
        return {"ok": True, "protocol": PROTOCOL_VERSION}

    def _ingest(self, frames: list[Any]) -> bool:
        """Handle one data message; False if the buffer refused its pair (retry later)."""
        try:
            msg = decode(frames)
        except ProtocolError as e:
            reason = str(e).split(":")[0] if str(e).startswith("field") else str(e)
            self.bad[reason] += 1
            log.warning("bad message from the stream: %s", e)
            return True
        key = (msg.simulation_id, msg.step)
        with self.lock:  # one consistent state for `state_dict`
            self.last_seen[msg.simulation_id] = time.monotonic()
            if key in self._seen:
                self.duplicates += 1
                return True
            prev = self._last.get(msg.simulation_id)
            if prev is not None and prev.step == msg.step - 1:
                if not self.buffer.put((prev, msg), prev.nbytes + msg.nbytes):
                    return False
                self.pairs += 1
            self._seen.add(key)
            self._last[msg.simulation_id] = msg
            self.received += 1
            self.bytes_received += msg.nbytes
        return True

    def state_dict(self) -> dict[str, Any]:
        """What a restarted server needs (checkpoint-safe: tensors, numbers, strings): the buffer's
        pairs, every (simulation, step) seen, each simulation's last step and who finished."""
        with self.lock:
            return {
                "seen": sorted([sim, step] for sim, step in self._seen),
                "registered": sorted(self.registered),
                "finished": sorted(self.finished),
                "last": {sim: pack_message(m) for sim, m in self._last.items()},
                "counters": {
                    "received": self.received,
                    "pairs": self.pairs,
                    "duplicates": self.duplicates,
                    "bytes_received": self.bytes_received,
                },
                "buffer": self.buffer.state_dict(lambda pair: [pack_message(m) for m in pair]),
            }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.buffer.load_state_dict(state["buffer"], lambda pair: tuple(unpack_message(m) for m in pair))
            self._seen = {(sim, int(step)) for sim, step in state["seen"]}
            self.registered, self.finished = set(state["registered"]), set(state["finished"])
            self._last = {sim: unpack_message(m) for sim, m in state["last"].items()}
            counters = state["counters"]
            self.received, self.pairs = int(counters["received"]), int(counters["pairs"])
            self.duplicates, self.bytes_received = int(counters["duplicates"]), int(counters["bytes_received"])

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._control, zmq.POLLIN)
        poller.register(self._data, zmq.POLLIN)
        pending: list[Any] | None = None
        while not self._stop.is_set():
            if pending is not None and self._ingest(pending):
                pending = None
            events = dict(poller.poll(20))
            if self._control in events:
                raw = self._control.recv()
                with self.lock:
                    reply = self._control_reply(raw)
                self._control.send_json(reply)
            while pending is None and self._data in events:  # drain what has arrived
                try:
                    frames = self._data.recv_multipart(flags=zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                if not self._ingest(frames):
                    pending = frames  # buffer full: stop reading, the senders block on their HWM

    def buffer_items(self) -> list[tuple[StepMessage, StepMessage]]:
        """The pairs the buffer holds now, in its order (a copy, for inspection)."""
        with self.lock:
            return [e.item for e in self.buffer.entries]

    def sample(self) -> tuple[StepMessage, StepMessage]:
        """One training pair from the buffer (thread-safe); IndexError when empty."""
        with self.lock:
            return self.buffer.get()

    def metrics(self) -> dict[str, Any]:
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        with self.lock:
            buf = self.buffer.metrics()
        return {
            "received": self.received,
            "pairs": self.pairs,
            "duplicates": self.duplicates,
            "bad": dict(self.bad),
            "samples_per_s": self.received / elapsed,
            "mb_per_s": self.bytes_received / elapsed / 1e6,
            "registered": len(self.registered),
            "finished": len(self.finished),
            "buffer": buf,
        }
