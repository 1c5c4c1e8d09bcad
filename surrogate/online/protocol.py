"""The streaming wire format: one ZeroMQ multipart message per solver time step, or per run
of consecutive steps.

    frame 0   JSON header, UTF-8:
              {"protocol": 1, "simulation_id": str, "step": int, "time": float,
               "parameters": {name: float}, "fields": [{"name", "dtype", "shape"}, ...]}
              and for k > 1 consecutive steps (step, step + 1, ..., step + k - 1):
              "n_steps": k, "times": [k floats]
    frame i   the raw bytes of field i - 1, C order, in the header's dtype and shape
              (k steps: k such arrays one after the other, (k, *shape))

Batching several small steps into one message (the Python client does it up to a byte
budget) spreads the per-message cost (header, validation) over them.

Fields travel as raw frames without copies: `encode` hands numpy buffers to ZeroMQ and
`decode` wraps the received frames with `np.frombuffer`. `decode` validates everything a
server must not trust: the header's size and nesting depth, the protocol version, the
header's keys and types, finite numbers (a literal 1e400 parses as infinity), dtypes from an
allowed list, shapes of at most MAX_DIMS non-negative dimensions, frame sizes against shapes,
and finite values. Whatever arrives, `decode` returns a message or raises `ProtocolError`
with the reason (its `reason` attribute is the kind, without the sender's text); the server
counts and logs it and carries on.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROTOCOL_VERSION = 1
DTYPES = ("float32", "float64", "float16", "int32", "int64")
MAX_HEADER_BYTES = 1 << 16
MAX_DEPTH = 4  # {"fields": [{"shape": [..]}]} is three levels deep (bounded before parsing)
MAX_DIMS = 8
MAX_NAME = 256
MAX_BATCH = 1024  # steps in one message


class ProtocolError(ValueError):
    """A message that does not follow the protocol; the text says why, `reason` names the kind
    (a fixed text, so that counters keyed by it stay bounded whatever is sent)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message
        self.simulation_id: str | None = None  # the sender's, when its header was readable
        self.step: int | None = None


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


def encode(msg: StepMessage, times: list[float] | None = None) -> list[Any]:
    """Frames for `socket.send_multipart(frames, copy=False)`: the header, then the arrays.

    With `times` (k of them), `msg` holds k consecutive steps from `msg.step`: each field
    (k, *shape), sent as one message."""
    arrays = [np.ascontiguousarray(a) for a in msg.fields.values()]
    for name, a in zip(msg.fields, arrays):
        if str(a.dtype) not in DTYPES:
            raise ProtocolError(f"field {name!r}: dtype {a.dtype} not in {DTYPES}")
    header: dict[str, Any] = {
        "protocol": PROTOCOL_VERSION,
        "simulation_id": msg.simulation_id,
        "step": int(msg.step),
        "time": float(msg.time),
        "parameters": {k: float(v) for k, v in msg.parameters.items()},
    }
    per_step = [list(a.shape) for a in arrays]
    if times is not None:
        header.update(n_steps=len(times), times=[float(t) for t in times])
        per_step = [shape[1:] for shape in per_step]
    header["fields"] = [{"name": n, "dtype": str(a.dtype), "shape": shape} for n, a, shape in zip(msg.fields, arrays, per_step)]
    return [json.dumps(header).encode(), *[memoryview(a).cast("B") for a in arrays]]


def all_finite(a: np.ndarray) -> bool:
    """True when no entry is NaN or Inf, in one BLAS pass: a . 0 is NaN exactly when some entry is
    NaN or Inf (inf * 0 = nan), and 0 otherwise, with no overflow and no temporary of a's size."""
    if a.dtype.kind != "f" or a.size == 0:
        return True
    flat = a.reshape(-1)
    with np.errstate(invalid="ignore"):
        return math.isfinite(float(np.dot(flat, _zeros(flat.size, flat.dtype))))


_ZEROS: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()
ZERO_CACHE = 4  # sizes kept: a stream has one schema; senders cannot grow the cache


def _zeros(n: int, dtype: np.dtype) -> np.ndarray:
    key = (n, str(dtype))
    if key in _ZEROS:
        _ZEROS.move_to_end(key)
        return _ZEROS[key]
    _ZEROS[key] = zeros = np.zeros(n, dtype=dtype)
    while len(_ZEROS) > ZERO_CACHE:
        _ZEROS.popitem(last=False)
    return zeros


def _require(cond: bool, message: str, reason: str | None = None) -> None:
    if not cond:
        raise ProtocolError(message, reason)


def _short(value: Any) -> str:
    """A sender's value for a message, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def decode(frames: list[Any]) -> list[StepMessage]:
    """Validate and unpack a received multipart message (frames as bytes or zmq.Frame) into
    its steps, in order (views of the frames, no copies).

    Raises only `ProtocolError`, whatever the frames hold."""
    try:
        return _decode(frames)
    except ProtocolError:
        raise
    except Exception as e:  # anything the checks above missed is still the sender's fault, never the server's
        raise ProtocolError(
            f"undecodable message ({type(e).__name__}: {str(e)[:120]})", f"undecodable message ({type(e).__name__})"
        ) from None


def _decode(frames: list[Any]) -> list[StepMessage]:
    _require(len(frames) >= 1, "empty message")
    raw = [f.buffer if hasattr(f, "buffer") else f for f in frames]
    _require(len(raw[0]) <= MAX_HEADER_BYTES, f"header of {len(raw[0])} bytes exceeds {MAX_HEADER_BYTES}", "header too large")
    text = bytes(raw[0])
    # Nesting is bounded before parsing when it could matter: json.loads recurses once per level
    # and a deep enough header would exhaust the interpreter's stack. A header with few brackets
    # (every honest one) cannot, and skips the scan.
    if text.count(b"[") + text.count(b"{") > 64:
        _require(_bracket_depth(text) <= MAX_DEPTH, f"header nests deeper than {MAX_DEPTH} levels", "header nests too deep")
    try:
        header = json.loads(text.decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ProtocolError(f"header is not JSON: {str(e)[:120]}", "header is not JSON") from None
    _require(isinstance(header, dict), "header is not a JSON object", "header shape")
    version = header.get("protocol")
    _require(version == PROTOCOL_VERSION, f"protocol version {_short(version)}, this server speaks {PROTOCOL_VERSION}", "protocol version")
    sim, step, t = header.get("simulation_id"), header.get("step"), header.get("time")
    _require(
        isinstance(sim, str) and 0 < len(sim) <= MAX_NAME,
        f"simulation_id must be a string of 1 to {MAX_NAME} characters",
        "bad simulation_id",
    )
    _require(_is_int(step) and 0 <= step < 2**62, f"step must be an integer in [0, 2**62), got {_short(step)}", "bad step")
    k = header.get("n_steps", 1)
    _require(_is_int(k) and 1 <= k <= MAX_BATCH, f"n_steps must be an integer in [1, {MAX_BATCH}], got {_short(k)}", "bad n_steps")
    try:
        return _decode_body(header, raw, sim, step, k, t)
    except ProtocolError as e:  # the message is attributable: the server knows that these steps arrived
        e.simulation_id, e.step = sim, step + k - 1
        raise


def _decode_body(header: dict[str, Any], raw: list[Any], sim: str, step: int, k: int, t: Any) -> list[StepMessage]:
    _require(_is_number(t), f"time must be a finite number, got {_short(t)}", "bad time")
    times = header.get("times", [t]) if k > 1 else [t]
    _require(
        isinstance(times, list) and len(times) == k and all(_is_number(x) for x in times),
        f"times must list n_steps = {k} finite numbers",
        "bad times",
    )
    params = header.get("parameters", {})
    _require(
        isinstance(params, dict) and all(isinstance(k, str) and len(k) <= MAX_NAME and _is_number(v) for k, v in params.items()),
        "parameters must map names to finite numbers",
        "bad parameters",
    )
    specs = header.get("fields")
    _require(isinstance(specs, list) and len(specs) >= 1, "fields must be a non-empty list", "bad fields")
    _require(len(specs) == len(raw) - 1, f"header lists {len(specs)} fields but {len(raw) - 1} data frames arrived", "frame count")
    fields: dict[str, np.ndarray] = {}
    for spec, buf in zip(specs, raw[1:]):
        _require(
            isinstance(spec, dict) and isinstance(spec.get("name"), str) and 0 < len(spec["name"]) <= MAX_NAME,
            "every field needs a name",
            "bad field name",
        )
        name = spec["name"]
        dtype, shape = spec.get("dtype"), spec.get("shape")
        _require(isinstance(dtype, str) and dtype in DTYPES, f"field {name!r}: dtype {_short(dtype)} not in {DTYPES}", "bad dtype")
        _require(
            isinstance(shape, list) and len(shape) <= MAX_DIMS and all(_is_int(n) and n >= 0 for n in shape),
            f"field {name!r}: shape {_short(shape)}; expected at most {MAX_DIMS} non-negative integers",
            "bad shape",
        )
        expected = k * math.prod(shape) * np.dtype(dtype).itemsize  # exact: no overflow on huge shapes
        what = f"{k} steps of shape {_short(shape)}" if k > 1 else f"shape {_short(shape)}"
        _require(len(buf) == expected, f"field {name!r}: {len(buf)} bytes, {what} of {dtype} needs {expected}", "frame size")
        a = np.frombuffer(buf, dtype=dtype).reshape([k, *shape])
        _require(all_finite(a), f"field {name!r}: NaN/Inf values", "NaN/Inf values")
        _require(name not in fields, f"field {name!r} appears twice", "repeated field")
        fields[name] = a
    values = {name: float(v) for name, v in params.items()}
    return [StepMessage(sim, step + i, float(times[i]), {n: a[i] for n, a in fields.items()}, values) for i in range(k)]


def _bracket_depth(text: bytes) -> int:
    """The deepest nesting of [ and { outside JSON strings (an upper bound is enough)."""
    depth = deepest = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:  # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif c in (0x5D, 0x7D):
            depth -= 1
    return deepest
