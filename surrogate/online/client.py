"""The solver side of a stream: register, send steps, heartbeat, say done.

    with OnlineClient(data_address, control_address, "sim-0", {"viscosity": 1e-3}) as c:
        c.send(step, t, {"vorticity": array})

Data go over PUSH with a send high-water mark: when the server stops reading, `send`
blocks (backpressure) rather than queueing without bound. Consecutive steps of at most
`batch_bytes / 8` are copied into one message of several steps (up to `batch_bytes`, and
within the server's maximum message size), sent when full, at a heartbeat, at a change of
shape or a gap in the steps, and on exit: small fields then cost one message per batch. Control requests go over REQ
with a timeout, so a dead server is an error rather than a hang. On exit the client says
`done` with its last step and repeats it until the server has received that step, so steps
still queued behind the request (under backpressure) are delivered, not dropped.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import zmq

from surrogate.fields import GridState
from surrogate.online.curve import ClientKeys
from surrogate.online.protocol import MAX_BATCH, MAX_HEADER_BYTES, PROTOCOL_VERSION, StepMessage, encode
from surrogate.stepper import AbstractStepper

MIN_BATCH = 8  # steps are batched only when this many fit the byte budget: copying larger ones costs more than it saves


class ServerUnavailable(ConnectionError):
    """The server did not answer a control request in time."""


class OnlineClient:
    def __init__(
        self,
        data_address: str,
        control_address: str,
        simulation_id: str,
        parameters: dict[str, float] | None = None,
        sndhwm: int = 4,
        timeout_ms: int = 5000,
        batch_bytes: int = 4 << 20,
        curve: ClientKeys | None = None,
    ) -> None:
        """`curve`: the keys for a server bound beyond 127.0.0.1 (default: SURROGATE_CURVE_* from
        the environment, when set)."""
        self.curve = curve or ClientKeys.from_env()
        self.simulation_id, self.parameters = simulation_id, dict(parameters or {})
        self.data_address, self.control_address = data_address, control_address
        self.sndhwm, self.timeout_ms, self.batch_bytes = sndhwm, timeout_ms, batch_bytes
        self.last_step: int | None = None
        self._batch: dict[str, np.ndarray] = {}  # field -> (k, *shape), steps copied in so far
        self._times: list[float] = []
        self._first = 0

    def __enter__(self) -> OnlineClient:
        self._ctx = ctx = zmq.Context()  # its own, terminated on exit once every zero-copy frame is out
        self._push = ctx.socket(zmq.PUSH)
        self._req = ctx.socket(zmq.REQ)
        if self.curve is not None:
            self.curve.apply(self._push)
            self.curve.apply(self._req)
        self._push.setsockopt(zmq.SNDHWM, self.sndhwm)
        self._push.setsockopt(zmq.LINGER, self.timeout_ms)
        self._push.connect(self.data_address)
        self._req.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        self._req.setsockopt(zmq.LINGER, 0)
        self._req.connect(self.control_address)
        reply = self._request("register", protocol=PROTOCOL_VERSION, parameters=self.parameters)
        if not reply.get("ok"):
            raise ConnectionRefusedError(f"server refused {self.simulation_id}: {reply.get('error')}")
        limit = reply.get("max_message_bytes")
        if isinstance(limit, int):
            self.batch_bytes = min(self.batch_bytes, limit - MAX_HEADER_BYTES)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if exc[0] is None:
                self.flush()
                extra = {} if self.last_step is None else {"last_step": self.last_step}
                while not self._request("done", **extra).get("received", True):
                    time.sleep(0.05)  # the server has not read our last step yet (a full buffer)
        finally:
            self._push.close()
            self._req.close()
            self._ctx.term()

    def _request(self, op: str, **extra: Any) -> dict[str, Any]:
        self._req.send_json({"op": op, "simulation_id": self.simulation_id, **extra})
        try:
            return json.loads(self._req.recv())
        except zmq.Again:
            raise ServerUnavailable(f"no answer from {self.control_address} within {self.timeout_ms} ms") from None

    def send(self, step: int, time: float, fields: dict[str, np.ndarray]) -> None:
        """Push one step (blocks while the server applies backpressure); small steps are
        batched (see the module docstring), so a caller may reuse its arrays after the call."""
        arrays = {k: np.asarray(a) for k, a in fields.items()}
        size = sum(a.nbytes for a in arrays.values())
        self.last_step = step if self.last_step is None else max(self.last_step, step)
        k = self.batch_bytes // max(size, 1)
        if k < MIN_BATCH or not arrays:  # a large step: its own message, without copies
            self.flush()
            self._push.send_multipart(encode(StepMessage(self.simulation_id, step, time, arrays, self.parameters)), copy=False)
            return
        n = len(self._times)
        same = n and step == self._first + n and self._batch.keys() == arrays.keys()
        if n and not (same and all(b.shape[1:] == a.shape and b.dtype == a.dtype for b, a in zip(self._batch.values(), arrays.values()))):
            self.flush()
            n = 0
        if n == 0:
            self._first = step
            self._batch = {name: np.empty((min(k, MAX_BATCH), *a.shape), a.dtype) for name, a in arrays.items()}
        for name, a in arrays.items():
            self._batch[name][n] = a
        self._times.append(float(time))
        if len(self._times) == len(next(iter(self._batch.values()))):
            self.flush()

    def flush(self) -> None:
        """Send the steps batched so far."""
        n = len(self._times)
        if n:
            fields = {name: b[:n] for name, b in self._batch.items()}
            msg = StepMessage(self.simulation_id, self._first, self._times[0], fields, self.parameters)
            self._push.send_multipart(encode(msg, self._times), copy=False)
            self._batch, self._times = {}, []

    def heartbeat(self) -> None:
        self.flush()
        self._request("heartbeat")


def stream(stepper: AbstractStepper, state: GridState, n_steps: int, client: OnlineClient, heartbeat_every: int = 10) -> None:
    """Advance `state` n_steps times with any Stepper, sending each state (the first included).

    A batched state (B > 1) is sent as its first simulation; launch one client per simulation.
    """
    names = state.field_names
    for step in range(n_steps + 1):
        if step:
            state = stepper.step(state)
        fields = {n: state.fields[0, i].detach().cpu().numpy().astype(np.float32) for i, n in enumerate(names)}
        client.send(step, float(state.time[0]), fields)
        if heartbeat_every and step % heartbeat_every == 0:
            client.heartbeat()
