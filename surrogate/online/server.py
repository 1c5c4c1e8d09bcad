"""The training side of a stream: a PULL socket for data, a REP socket for control.

A background thread receives step messages, validates them (`protocol.decode`) and checks
them against the stream's schema (field names, dtypes and shapes, parameter names: fixed by
the `schema` argument or by the first valid message), drops duplicates by (simulation id,
step), and turns consecutive steps of a simulation into training pairs (step s -> step s + 1)
in the buffer. When the buffer refuses a pair (full, FIFO/FIRO/Melissa's reservoir) the
thread stops reading the data socket, so ZeroMQ's high-water marks block the solvers
(backpressure) instead of growing memory, and sleeps until a draw frees room (a wake-up
message from `sample`), never spinning.

Nothing sent can stop the server: every exception raised while decoding or handling a
message on either socket is caught, counted by a fixed reason (`bad`), and logged once per
reason with the sender (truncated). Memory is bounded whatever is sent: the buffer's byte
capacity; the last step kept per open simulation (`max_open_bytes`, least recently updated
dropped first); at most `max_simulations` simulation ids in every table; ZeroMQ's maximum
message size on the data socket (`max_message_bytes`); and steps seen kept per simulation
as "all steps below n" plus at most `MAX_OUT_OF_ORDER` later ones. Sockets bind to 127.0.0.1
unless told; another interface needs CURVE keys (`surrogate.online.curve`): the traffic is
encrypted and only clients whose public key is in the keys folder get in.

Control requests (JSON over REQ/REP, one frame): {"op": "register", "simulation_id",
"protocol"}, {"op": "heartbeat", "simulation_id"}, {"op": "done", "simulation_id",
"last_step"}, and {"op": "status"} (seconds since each simulation was last heard of, for the
launcher's watchdog). A simulation counts as finished only once its `last_step` has been received
(the reply says `"received"`; clients repeat `done` until it is true), so data still queued
behind `done` is never lost.

Held-out simulations (`hold_out` ids, or with `hold_first` the first ones to send a step)
never reach the buffer: their steps are kept whole, within `max_held_bytes`, for the
evaluation after training (`held_out()`).

`state_dict()` / `load_state_dict()` save and restore the buffer's pairs, the steps seen and
the finished simulations, so that a server restarted from a training checkpoint drops the
steps it already has and the launcher skips the simulations that finished.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import zmq
from zmq.auth.thread import ThreadAuthenticator

from surrogate.errors import InputError
from surrogate.online.buffer import AbstractBuffer
from surrogate.online.curve import ServerKeys, is_loopback
from surrogate.online.protocol import MAX_HEADER_BYTES, MAX_NAME, PROTOCOL_VERSION, ProtocolError, StepMessage, decode

MAX_OUT_OF_ORDER = 1024  # steps seen ahead of a simulation's contiguous prefix, kept per simulation


@dataclass(frozen=True)
class StreamSchema:
    """What every message of a stream must hold: field name -> (dtype, shape), and parameters."""

    fields: dict[str, tuple[str, tuple[int, ...]]]
    parameters: tuple[str, ...] = ()

    @classmethod
    def of(cls, msg: StepMessage) -> StreamSchema:
        return cls({k: (str(a.dtype), tuple(a.shape)) for k, a in msg.fields.items()}, tuple(sorted(msg.parameters)))

    def state(self) -> dict[str, Any]:
        """Plain values for a checkpoint."""
        return {"fields": {k: [d, list(shape)] for k, (d, shape) in self.fields.items()}, "parameters": list(self.parameters)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> StreamSchema:
        return cls({k: (str(d), tuple(int(n) for n in shape)) for k, (d, shape) in state["fields"].items()}, tuple(state["parameters"]))

    def mismatch(self, msg: StepMessage) -> str | None:
        """Why `msg` does not follow the schema (a fixed text), or None."""
        if set(msg.fields) != set(self.fields):
            return "schema: other fields"
        for k, a in msg.fields.items():
            if (str(a.dtype), tuple(a.shape)) != self.fields[k]:
                return "schema: other dtype or shape"
        if tuple(sorted(msg.parameters)) != self.parameters:
            return "schema: other parameters"
        return None


@dataclass
class _Seen:
    """The steps of one simulation received so far: every step below `below`, and `ahead`."""

    below: int = 0
    ahead: set[int] = field(default_factory=set)

    def __contains__(self, step: int) -> bool:
        return step < self.below or step in self.ahead

    def add(self, step: int) -> None:
        self.ahead.add(step)
        while self.below in self.ahead:
            self.ahead.remove(self.below)
            self.below += 1
        while len(self.ahead) > MAX_OUT_OF_ORDER:  # forget the farthest; a repeat of it would count twice
            self.ahead.remove(max(self.ahead))


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
    """Receives steps into `buffer` on a background thread. Use as a context manager.

    Args:
        schema: the stream's schema; None takes the first valid message's.
        max_simulations: distinct simulation ids the tables hold; later ids are refused.
        max_open_bytes: bytes of the last steps kept to pair with the next (default: the
            buffer's capacity).
        max_message_bytes: ZeroMQ's limit on one received frame (default: half the buffer's
            capacity plus a header: a pair must fit the buffer).
    """

    def __init__(
        self,
        buffer: AbstractBuffer,
        host: str = "127.0.0.1",
        rcvhwm: int = 8,
        schema: StreamSchema | None = None,
        max_simulations: int = 100_000,
        max_open_bytes: int | None = None,
        max_message_bytes: int | None = None,
        hold_out: Iterable[str] = (),
        hold_first: int = 0,
        max_held_bytes: int | None = None,
        port: int = 0,
        curve: ServerKeys | None = None,
    ) -> None:
        if not is_loopback(host) and curve is None:
            raise InputError(
                f"stream.host {host!r}: a stream server reachable beyond this machine needs CURVE keys "
                "(stream.curve_keys: a folder, made with its keys when missing; see surrogate.online.curve)"
            )
        self.buffer, self.host, self.rcvhwm, self.schema = buffer, host, rcvhwm, schema
        self._schema_set = threading.Event()
        if schema is not None:
            self._schema_set.set()
        self.hold_out, self.hold_first = set(hold_out), hold_first
        self.max_held_bytes = buffer.capacity_bytes if max_held_bytes is None else max_held_bytes
        self._held: dict[str, dict[int, StepMessage]] = {}
        self._held_bytes = 0
        self.max_simulations = max_simulations
        self.max_open_bytes = buffer.capacity_bytes if max_open_bytes is None else max_open_bytes
        self.lock = threading.Lock()
        self.bad: Counter[str] = Counter()
        self._logged: set[str] = set()
        self.received = self.duplicates = self.pairs = self.evicted = 0
        self.bytes_received = 0
        self.registered: set[str] = set()
        self.finished: set[str] = set()
        self.last_seen: dict[str, float] = {}
        self._seen: dict[str, _Seen] = {}
        self._last: OrderedDict[str, StepMessage] = OrderedDict()
        self._last_bytes = 0
        self._done_at: dict[str, int] = {}  # simulation -> last step, said done before it arrived
        self._arrived: dict[str, int] = {}  # simulation -> its highest step that arrived (accepted or not)
        self._stop = threading.Event()
        self._ctx = zmq.Context.instance() if curve is None else zmq.Context()
        self._auth: ThreadAuthenticator | None = None
        if curve is not None:  # only clients whose public key is in the keys folder get in
            self._auth = ThreadAuthenticator(self._ctx)
            self._auth.start()
            self._auth.configure_curve(domain="*", location=str(curve.clients))
        self._data = self._ctx.socket(zmq.PULL)
        self._data.setsockopt(zmq.RCVHWM, rcvhwm)
        self.max_message_bytes = int(max_message_bytes or buffer.capacity_bytes // 2 + MAX_HEADER_BYTES)
        self._data.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        self._control = self._ctx.socket(zmq.REP)
        self._control.setsockopt(zmq.MAXMSGSIZE, MAX_HEADER_BYTES)
        if curve is not None:
            curve.apply(self._data)
            curve.apply(self._control)
        self.data_port = self._bind(self._data, port)
        self.control_port = self._bind(self._control, port + 1 if port else 0)
        # `sample` wakes the thread when it frees room in a full buffer (under `lock`).
        self._wake_rx = self._ctx.socket(zmq.PAIR)
        wake = f"inproc://stream-server-{uuid.uuid4().hex}"  # unique: a closed one may linger in ZeroMQ a moment
        self._wake_rx.bind(wake)
        self._wake_tx = self._ctx.socket(zmq.PAIR)
        self._wake_tx.connect(wake)
        self._blocked = False
        self._thread = threading.Thread(target=self._run, name="stream-server", daemon=True)
        self._t0 = time.perf_counter()

    def _bind(self, sock: zmq.Socket[Any], port: int) -> int:
        """Bind `sock` on `port` (a random free one when 0); the port bound."""
        if not port:
            return int(sock.bind_to_random_port(f"tcp://{self.host}"))
        try:
            sock.bind(f"tcp://{self.host}:{port}")
        except zmq.ZMQError as e:
            raise InputError(f"stream.port: cannot bind tcp://{self.host}:{port} ({e}); choose another, or 0 for any free port") from None
        return port

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
        for sock in (self._data, self._control, self._wake_rx, self._wake_tx):
            sock.close(0)
        if self._auth is not None:
            self._auth.stop()
            self._ctx.term()

    def _reject(self, reason: str, detail: str, sender: str) -> None:
        """Count a bad input by its fixed `reason`; log the first of each reason with its sender."""
        self.bad[reason] += 1
        if reason not in self._logged:
            self._logged.add(reason)
            log.warning("stream: rejected input from %s: %s (further ones are counted in metrics()['bad'])", sender[:80], detail[:300])

    def _known(self, sim: str) -> bool:
        """True when `sim` has room in the tables (a known id, or fewer than max_simulations)."""
        return sim in self.last_seen or len(self.last_seen) < self.max_simulations

    def _control_reply(self, frames: list[bytes]) -> dict[str, Any]:
        if len(frames) != 1:
            self._reject("control: frame count", f"{len(frames)} frames, expected 1", "a control client")
            return {"ok": False, "error": "a control request is one frame of JSON"}
        try:
            req = json.loads(frames[0])
            op, sim = req["op"], req["simulation_id"]
        except (ValueError, KeyError, TypeError, RecursionError):
            self._reject("control: malformed request", repr(frames[0][:80]), "a control client")
            return {"ok": False, "error": "malformed control request"}
        if not (isinstance(op, str) and isinstance(sim, str) and 0 < len(sim) <= MAX_NAME):
            self._reject("control: malformed request", f"op {op!r:.40}, simulation_id {sim!r:.80}", "a control client")
            return {"ok": False, "error": f"op and simulation_id must be strings (simulation_id of 1 to {MAX_NAME} characters)"}
        if op == "status":  # the launcher's watchdog: how long ago each simulation was heard of
            now = time.monotonic()
            return {"ok": True, "protocol": PROTOCOL_VERSION, "ages": {s: now - t for s, t in self.last_seen.items()}}
        if not self._known(sim):
            self._reject("control: too many simulations", f"{self.max_simulations} simulations already known", sim)
            return {"ok": False, "error": f"this server tracks at most {self.max_simulations} simulations"}
        self.last_seen[sim] = time.monotonic()
        if op == "register":
            if req.get("protocol") != PROTOCOL_VERSION:
                self._reject("control: protocol version", f"protocol {req.get('protocol')!r:.40}", sim)
                return {"ok": False, "error": f"protocol {req.get('protocol')!r:.40}, server speaks {PROTOCOL_VERSION}"}
            self.registered.add(sim)
            return {"ok": True, "protocol": PROTOCOL_VERSION, "max_message_bytes": self.max_message_bytes}
        elif op == "done":
            last = req.get("last_step")
            arrived = sim in self.finished or not isinstance(last, int) or last in self._seen.get(sim, _Seen())
            arrived = arrived or self._arrived.get(sim, -1) >= last
            if isinstance(last, int) and not isinstance(last, bool) and last >= 0 and not arrived:
                self._done_at[sim] = last  # finished once that step arrives
                return {"ok": True, "protocol": PROTOCOL_VERSION, "received": False}
            self._finish(sim)
            return {"ok": True, "protocol": PROTOCOL_VERSION, "received": True}
        elif op != "heartbeat":
            self._reject("control: unknown op", f"op {op!r:.40}", sim)
            return {"ok": False, "error": f"unknown op {op!r:.40}"}
        return {"ok": True, "protocol": PROTOCOL_VERSION}

    def _finish(self, sim: str) -> None:
        self.finished.add(sim)
        self._done_at.pop(sim, None)
        self._arrived.pop(sim, None)
        old = self._last.pop(sim, None)  # no later step will pair with it
        if old is not None:
            self._last_bytes -= old.nbytes

    def _ingest(self, frames: list[Any]) -> list[StepMessage]:
        """Handle one data message; the steps the buffer refused (full: retry them later)."""
        try:
            msgs = decode(frames)
        except ProtocolError as e:
            sender = e.simulation_id or (frames[0].get("Peer-Address") if frames and hasattr(frames[0], "get") else "a data client")
            with self.lock:
                self._reject(e.reason, str(e), str(sender))
                if e.simulation_id is not None and e.step is not None:
                    self._arrival(e.simulation_id, e.step)
            return []
        if len(msgs) > 1:  # steps kept must not pin their whole batch's frame: the buffer counts a step's own bytes
            msgs = [StepMessage(m.simulation_id, m.step, m.time, {k: a.copy() for k, a in m.fields.items()}, m.parameters) for m in msgs]
        return self._accept_all(msgs)

    def _accept_all(self, msgs: list[StepMessage]) -> list[StepMessage]:
        """Accept steps in order until the buffer refuses one; the refused one and the rest."""
        with self.lock:  # one consistent state for `state_dict`
            for i, msg in enumerate(msgs):
                if not self._accept(msg):
                    return msgs[i:]
        return []

    def _arrival(self, sim: str, step: int) -> None:
        """Note that `step` of `sim` arrived, even if refused: its `done` need not wait for it."""
        if self._known(sim):
            self.last_seen[sim] = time.monotonic()
            self._arrived[sim] = max(step, self._arrived.get(sim, -1))
            if self._done_at.get(sim, step + 1) <= step:
                self._finish(sim)

    def _accept(self, msg: StepMessage) -> bool:
        sim = msg.simulation_id
        reason = "data: a pair larger than the buffer" if msg.nbytes * 2 > self.buffer.capacity_bytes else None
        if reason is None:
            if self.schema is None:  # the first message that fits fixes the stream's schema
                self.schema = StreamSchema.of(msg)
                self._schema_set.set()
            reason = self.schema.mismatch(msg)
        if reason is None and not self._known(sim):
            reason = "data: too many simulations"
        if reason is not None:
            detail = f"step {msg.step}: {msg.nbytes} bytes, fields {sorted(msg.fields)}, parameters {sorted(msg.parameters)}"
            self._reject(reason, detail[:300], sim)
            self._arrival(sim, msg.step)
            return True
        self.last_seen[sim] = time.monotonic()
        if sim not in self._seen and len(self.hold_out) < self.hold_first and sim not in self.hold_out:
            self.hold_out.add(sim)  # attached clients: the first ones are held out
        seen = self._seen.setdefault(sim, _Seen())
        if msg.step in seen:
            self.duplicates += 1
            return True
        if sim in self.hold_out:
            return self._hold(msg, seen)
        prev = self._last.get(sim)
        if prev is not None and prev.step == msg.step - 1:
            if not self.buffer.put((prev, msg), prev.nbytes + msg.nbytes):
                self._blocked = True
                return False
            self.pairs += 1
        seen.add(msg.step)
        self._arrived[sim] = max(msg.step, self._arrived.get(sim, -1))
        self.received += 1
        self.bytes_received += msg.nbytes
        if self._done_at.get(sim) == msg.step:  # its last step: the simulation is complete
            self._finish(sim)
        else:
            self._keep_last(msg)
        return True

    def _hold(self, msg: StepMessage, seen: _Seen) -> bool:
        """Keep a held-out simulation's step for the evaluation (never in the buffer)."""
        if self._held_bytes + msg.nbytes > self.max_held_bytes:
            self._reject("data: held-out simulations over their byte limit", f"{self.max_held_bytes} bytes held", msg.simulation_id)
        else:
            self._held.setdefault(msg.simulation_id, {})[msg.step] = msg
            self._held_bytes += msg.nbytes
        seen.add(msg.step)
        self._arrived[msg.simulation_id] = max(msg.step, self._arrived.get(msg.simulation_id, -1))
        self.received += 1
        if self._done_at.get(msg.simulation_id) == msg.step:
            self._finish(msg.simulation_id)
        return True

    def wait_schema(self, timeout_s: float) -> StreamSchema | None:
        """The stream's schema once fixed (by the constructor or the first valid message)."""
        self._schema_set.wait(timeout_s)
        return self.schema

    def held_out(self) -> dict[str, list[StepMessage]]:
        """The finished held-out simulations: {id: steps in order} (a gap ends the trajectory)."""
        with self.lock:
            out = {}
            for sim, steps in self._held.items():
                if sim in self.finished:
                    run = []
                    while len(run) in steps:
                        run.append(steps[len(run)])
                    out[sim] = run
            return out

    def wait_held_out(self, n: int, timeout_s: float) -> bool:
        """Wait until `n` held-out simulations have finished; False when `timeout_s` passed first."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self.lock:
                done = len(self.hold_out & self.finished)
            if done >= n:
                return True
            if time.monotonic() > deadline:
                return False
            self._stop.wait(0.05)

    def addresses(self, advertise: str = "") -> tuple[str, str]:
        """(data, control) addresses for solvers: through `advertise` (a host name or IP the
        workers reach) when given, else the bound interface."""
        host = advertise or self.host
        return f"tcp://{host}:{self.data_port}", f"tcp://{host}:{self.control_port}"

    def _keep_last(self, msg: StepMessage) -> None:
        """Keep `msg` to pair with its successor, within `max_open_bytes` (oldest dropped first)."""
        old = self._last.pop(msg.simulation_id, None)
        self._last_bytes -= old.nbytes if old is not None else 0
        self._last[msg.simulation_id] = msg
        self._last_bytes += msg.nbytes
        while self._last_bytes > self.max_open_bytes and len(self._last) > 1:
            _, dropped = self._last.popitem(last=False)
            self._last_bytes -= dropped.nbytes
            self.evicted += 1

    def state_dict(self) -> dict[str, Any]:
        """What a restarted server needs (checkpoint-safe: tensors, numbers, strings): the buffer's
        pairs, the steps seen, each simulation's last step and who finished."""
        with self.lock:
            return {
                "seen": {sim: [s.below, sorted(s.ahead)] for sim, s in self._seen.items()},
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
                "held": {sim: [pack_message(m) for m in steps.values()] for sim, steps in self._held.items()},
                "hold_out": sorted(self.hold_out),
                "schema": None if self.schema is None else self.schema.state(),
            }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.buffer.load_state_dict(state["buffer"], lambda pair: tuple(unpack_message(m) for m in pair))
            seen = state["seen"]
            if isinstance(seen, list):  # an older checkpoint: [[sim, step], ...]
                self._seen = {}
                for sim, step in seen:
                    self._seen.setdefault(sim, _Seen()).add(int(step))
            else:
                self._seen = {sim: _Seen(int(below), {int(x) for x in ahead}) for sim, (below, ahead) in seen.items()}
            self.registered, self.finished = set(state["registered"]), set(state["finished"])
            self._last = OrderedDict((sim, unpack_message(m)) for sim, m in state["last"].items())
            self._last_bytes = sum(m.nbytes for m in self._last.values())
            counters = state["counters"]
            self.received, self.pairs = int(counters["received"]), int(counters["pairs"])
            self.duplicates, self.bytes_received = int(counters["duplicates"]), int(counters["bytes_received"])
            self.hold_out |= set(state.get("hold_out", []))
            if self.schema is None and state.get("schema") is not None:  # a resumed stream keeps its schema
                self.schema = StreamSchema.from_state(state["schema"])
                self._schema_set.set()
            self._held = {sim: {int(m["step"]): unpack_message(m) for m in steps} for sim, steps in state.get("held", {}).items()}
            self._held_bytes = sum(m.nbytes for steps in self._held.values() for m in steps.values())

    def _run(self) -> None:
        idle = zmq.Poller()  # a full buffer: control requests and the wake-up only
        idle.register(self._control, zmq.POLLIN)
        idle.register(self._wake_rx, zmq.POLLIN)
        busy = zmq.Poller()
        busy.register(self._control, zmq.POLLIN)
        busy.register(self._wake_rx, zmq.POLLIN)
        busy.register(self._data, zmq.POLLIN)
        pending: list[StepMessage] = []  # steps the full buffer refused, retried first
        while not self._stop.is_set():
            if pending:
                pending = self._accept_all(pending)
            events = dict((idle if pending else busy).poll(100))
            if self._wake_rx in events:
                while self._wake_rx.poll(0):
                    self._wake_rx.recv()
            if self._control in events:
                self._serve_control()
            while not pending and self._data in events:  # drain what has arrived
                try:
                    frames = self._data.recv_multipart(flags=zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                pending = self._ingest(frames)  # left over: the buffer is full, stop reading (senders block on their HWM)

    def _serve_control(self) -> None:
        try:
            frames = self._control.recv_multipart()
        except zmq.ZMQError:
            return
        with self.lock:
            reply = self._control_reply(frames)
        self._control.send_json(reply)

    def buffer_items(self) -> list[tuple[StepMessage, StepMessage]]:
        """The pairs the buffer holds now, in its order (a copy, for inspection)."""
        with self.lock:
            return [e.item for e in self.buffer.entries]

    def sample(self) -> tuple[StepMessage, StepMessage]:
        """One training pair from the buffer (thread-safe); IndexError when empty."""
        with self.lock:
            item = self.buffer.get()
            if self._blocked:  # the receiving thread waits for room: wake it
                self._blocked = False
                self._wake_tx.send(b"", zmq.NOBLOCK)
            return item

    def metrics(self) -> dict[str, Any]:
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        with self.lock:
            buf = self.buffer.metrics()
            open_bytes = self._last_bytes
        return {
            "received": self.received,
            "pairs": self.pairs,
            "duplicates": self.duplicates,
            "bad": dict(self.bad),
            "samples_per_s": self.received / elapsed,
            "mb_per_s": self.bytes_received / elapsed / 1e6,
            "registered": len(self.registered),
            "finished": len(self.finished),
            "open_bytes": open_bytes,
            "evicted_last_steps": self.evicted,
            "buffer": buf,
        }
