"""The solver side of a stream: register, send steps, heartbeat, say done.

    with OnlineClient(data_address, control_address, "sim-0", {"viscosity": 1e-3}) as c:
        c.send(step, t, {"vorticity": array})

Data go over PUSH with a send high-water mark: when the server stops reading, `send`
blocks (backpressure) rather than queueing without bound. Control requests go over REQ
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
from surrogate.online.protocol import PROTOCOL_VERSION, StepMessage, encode
from surrogate.stepper import AbstractStepper


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
    ) -> None:
        self.simulation_id, self.parameters = simulation_id, dict(parameters or {})
        self.data_address, self.control_address = data_address, control_address
        self.sndhwm, self.timeout_ms = sndhwm, timeout_ms
        self.last_step: int | None = None

    def __enter__(self) -> OnlineClient:
        ctx = zmq.Context.instance()
        self._push = ctx.socket(zmq.PUSH)
        self._push.setsockopt(zmq.SNDHWM, self.sndhwm)
        self._push.setsockopt(zmq.LINGER, self.timeout_ms)
        self._push.connect(self.data_address)
        self._req = ctx.socket(zmq.REQ)
        self._req.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        self._req.setsockopt(zmq.LINGER, 0)
        self._req.connect(self.control_address)
        reply = self._request("register", protocol=PROTOCOL_VERSION, parameters=self.parameters)
        if not reply.get("ok"):
            raise ConnectionRefusedError(f"server refused {self.simulation_id}: {reply.get('error')}")
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if exc[0] is None:
                extra = {} if self.last_step is None else {"last_step": self.last_step}
                while not self._request("done", **extra).get("received", True):
                    time.sleep(0.05)  # the server has not read our last step yet (a full buffer)
        finally:
            self._push.close()
            self._req.close()

    def _request(self, op: str, **extra: Any) -> dict[str, Any]:
        self._req.send_json({"op": op, "simulation_id": self.simulation_id, **extra})
        try:
            return json.loads(self._req.recv())
        except zmq.Again:
            raise ServerUnavailable(f"no answer from {self.control_address} within {self.timeout_ms} ms") from None

    def send(self, step: int, time: float, fields: dict[str, np.ndarray]) -> None:
        """Push one step (blocks while the server applies backpressure)."""
        msg = StepMessage(self.simulation_id, step, time, fields, self.parameters)
        self._push.send_multipart(encode(msg), copy=False)
        self.last_step = step if self.last_step is None else max(self.last_step, step)

    def heartbeat(self) -> None:
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
