"""The streaming wire format: one ZeroMQ multipart message per solver time step.

    frame 0   JSON header, UTF-8:
              {"protocol": 1, "simulation_id": str, "step": int, "time": float,
               "parameters": {name: float}, "fields": [{"name", "dtype", "shape"}, ...]}
    frame i   the raw bytes of field i - 1, C order, in the header's dtype and shape

Fields travel as raw frames without copies: `encode` hands numpy buffers to ZeroMQ and
`decode` wraps the received frames with `np.frombuffer`. `decode` validates everything a
server must not trust: the protocol version, the header's keys and types, dtypes from an
allowed list, frame sizes against shapes, and finite values. A bad message raises
`ProtocolError` with the reason; the server counts and logs it and carries on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROTOCOL_VERSION = 1
DTYPES = ("float32", "float64", "float16", "int32", "int64")
MAX_HEADER_BYTES = 1 << 16


class ProtocolError(ValueError):
    """A message that does not follow the protocol; the text says why."""


@dataclass
class StepMessage:
    """One time step of one simulation."""

    simulation_id: str
    step: int
    time: float
    fields: dict[str, np.ndarray]
    parameters: dict[str, float] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.fields.values())


def encode(msg: StepMessage) -> list[Any]:
    """Frames for `socket.send_multipart(frames, copy=False)`: the header, then the arrays."""
    arrays = [np.ascontiguousarray(a) for a in msg.fields.values()]
    for name, a in zip(msg.fields, arrays):
        if str(a.dtype) not in DTYPES:
            raise ProtocolError(f"field {name!r}: dtype {a.dtype} not in {DTYPES}")
    header = {
        "protocol": PROTOCOL_VERSION,
        "simulation_id": msg.simulation_id,
        "step": int(msg.step),
        "time": float(msg.time),
        "parameters": {k: float(v) for k, v in msg.parameters.items()},
        "fields": [{"name": n, "dtype": str(a.dtype), "shape": list(a.shape)} for n, a in zip(msg.fields, arrays)],
    }
    return [json.dumps(header).encode(), *[memoryview(a).cast("B") for a in arrays]]


def all_finite(a: np.ndarray) -> bool:
    """True when no entry is NaN or Inf, in one BLAS pass: a . 0 is NaN exactly when some entry is
    NaN or Inf (inf * 0 = nan), and 0 otherwise, with no overflow and no temporary of a's size."""
    if a.dtype.kind != "f" or a.size == 0:
        return True
    flat = a.reshape(-1)
    with np.errstate(invalid="ignore"):
        return math.isfinite(float(np.dot(flat, _zeros(flat.size, flat.dtype))))


_ZEROS: dict[tuple[int, str], np.ndarray] = {}


def _zeros(n: int, dtype: np.dtype) -> np.ndarray:
    key = (n, str(dtype))
    if key not in _ZEROS:
        _ZEROS[key] = np.zeros(n, dtype=dtype)
    return _ZEROS[key]


def _require(cond: bool, reason: str) -> None:
    if not cond:
        raise ProtocolError(reason)


def decode(frames: list[Any]) -> StepMessage:
    """Validate and unpack a received multipart message (frames as bytes or zmq.Frame)."""
    _require(len(frames) >= 1, "empty message")
    raw = [f.buffer if hasattr(f, "buffer") else f for f in frames]
    _require(len(raw[0]) <= MAX_HEADER_BYTES, f"header of {len(raw[0])} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = json.loads(bytes(raw[0]).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError(f"header is not JSON: {e}") from None
    _require(isinstance(header, dict), "header is not a JSON object")
    version = header.get("protocol")
    _require(version == PROTOCOL_VERSION, f"protocol version {version!r}, this server speaks {PROTOCOL_VERSION}")
    sim, step, t = header.get("simulation_id"), header.get("step"), header.get("time")
    _require(isinstance(sim, str) and sim != "", "simulation_id must be a non-empty string")
    _require(isinstance(step, int) and not isinstance(step, bool) and step >= 0, f"step must be an integer >= 0, got {step!r}")
    _require(isinstance(t, (int, float)) and math.isfinite(t), f"time must be a finite number, got {t!r}")
    params = header.get("parameters", {})
    _require(isinstance(params, dict) and all(isinstance(v, (int, float)) for v in params.values()), "parameters must map names to numbers")
    specs = header.get("fields")
    _require(isinstance(specs, list) and len(specs) >= 1, "fields must be a non-empty list")
    _require(len(specs) == len(raw) - 1, f"header lists {len(specs)} fields but {len(raw) - 1} data frames arrived")
    fields: dict[str, np.ndarray] = {}
    for spec, buf in zip(specs, raw[1:]):
        _require(isinstance(spec, dict) and isinstance(spec.get("name"), str), "every field needs a name")
        name = spec["name"]
        dtype, shape = spec.get("dtype"), spec.get("shape")
        _require(dtype in DTYPES, f"field {name!r}: dtype {dtype!r} not in {DTYPES}")
        _require(isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape), f"field {name!r}: bad shape {shape!r}")
        expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
        _require(len(buf) == expected, f"field {name!r}: {len(buf)} bytes, shape {shape} of {dtype} needs {expected}")
        a = np.frombuffer(buf, dtype=dtype).reshape(shape)
        _require(all_finite(a), f"field {name!r}: NaN/Inf values")
        _require(name not in fields, f"field {name!r} appears twice")
        fields[name] = a
    return StepMessage(sim, step, float(t), fields, {k: float(v) for k, v in params.items()})
