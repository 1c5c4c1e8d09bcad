import json

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surrogate.errors import InputError
from surrogate.online.buffer import FIFOBuffer, FIROBuffer, ReservoirBuffer
from surrogate.online.protocol import DTYPES, PROTOCOL_VERSION, ProtocolError, StepMessage, decode, encode


def test_fifo_order_capacity_and_backpressure():
    buf = FIFOBuffer(capacity_bytes=300)
    assert [buf.put(i, 100) for i in range(4)] == [True, True, True, False]
    assert [buf.get() for _ in range(3)] == [0, 1, 2]
    assert buf.fill_bytes == 0 and buf.metrics()["mean_staleness"] == pytest.approx(1.0)
    with pytest.raises(IndexError):
        buf.get()
    with pytest.raises(InputError, match="cannot fit"):
        buf.put("big", 301)


def test_firo_draws_each_sample_once_in_random_order():
    buf = FIROBuffer(capacity_bytes=1000, seed=1)
    for i in range(10):
        assert buf.put(i, 100)
    drawn = [buf.get() for _ in range(10)]
    assert sorted(drawn) == list(range(10)) and drawn != list(range(10))
    assert len(buf) == 0


def test_reservoir_is_uniform_over_the_stream():
    """Algorithm R: after n arrivals each one is held with probability k / n."""
    k, n, runs = 10, 100, 2000
    counts = np.zeros(n)
    for seed in range(runs):
        buf = ReservoirBuffer(capacity_bytes=k * 8, seed=seed)
        for i in range(n):
            buf.put(i, 8)
        counts[[e.item for e in buf.entries]] += 1
    p = counts / runs
    assert np.abs(p - k / n).max() < 5 * np.sqrt(k / n * (1 - k / n) / runs)  # 5 sigma
    assert buf.fill_bytes == k * 8
    draws = [buf.get() for _ in range(50)]
    assert len(set(draws)) < 50  # repeated draws are allowed
    assert buf.metrics()["mean_uses_of_held"] == pytest.approx(5.0)


def test_round_trip_over_zeromq_is_exact():
    ctx = zmq.Context.instance()
    pull = ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    rng = np.random.default_rng(0)
    msg = StepMessage("sim-7", 3, 0.75, {"u": rng.standard_normal((16, 8)).astype(np.float32), "p": rng.standard_normal(5)}, {"re": 100.0})
    push.send_multipart(encode(msg), copy=False)
    (got,) = decode(pull.recv_multipart(copy=False))
    assert (got.simulation_id, got.step, got.time, got.parameters) == ("sim-7", 3, 0.75, {"re": 100.0})
    for k in msg.fields:
        assert got.fields[k].dtype == msg.fields[k].dtype
        np.testing.assert_array_equal(got.fields[k], msg.fields[k])
    push.close(0)
    pull.close(0)


def test_a_batch_of_steps_decodes_into_consecutive_steps():
    u = np.arange(3 * 4 * 2, dtype=np.float64).reshape(3, 4, 2)
    msg = StepMessage("sim", 10, 1.0, {"u": u}, {"nu": 0.5})
    frames = [bytes(f) for f in encode(msg, [1.0, 1.5, 2.5])]
    got = decode(frames)
    assert [(m.step, m.time, m.parameters) for m in got] == [(10, 1.0, {"nu": 0.5}), (11, 1.5, {"nu": 0.5}), (12, 2.5, {"nu": 0.5})]
    for i, m in enumerate(got):
        np.testing.assert_array_equal(m.fields["u"], u[i])
    header = json.loads(frames[0])
    header["times"] = [1.0, 1.5]
    with pytest.raises(ProtocolError, match="times must list n_steps = 3"):
        decode([json.dumps(header).encode(), frames[1]])


def frames_with(**changes):
    msg = StepMessage("s", 0, 0.0, {"u": np.zeros((2, 3), np.float32)})
    frames = [bytes(f) for f in encode(msg)]
    header = json.loads(frames[0])
    header.update(changes.get("header", {}))
    frames[0] = json.dumps(header).encode()
    if "data" in changes:
        frames[1] = changes["data"]
    return frames[: changes.get("keep", len(frames))]


@pytest.mark.parametrize(
    "frames,reason",
    [
        (frames_with(header={"protocol": PROTOCOL_VERSION + 1}), "protocol version 2"),
        (frames_with(data=b"\x00" * 5), "5 bytes, shape \\[2, 3\\] of float32 needs 24"),
        (frames_with(data=np.full((2, 3), np.nan, np.float32).tobytes()), "NaN"),
        (frames_with(header={"fields": [{"name": "u", "dtype": "complex64", "shape": [2, 3]}]}), "dtype 'complex64'"),
        (frames_with(keep=1), "lists 1 fields but 0 data frames"),
        (frames_with(header={"step": -1}), "step must be an integer in \\[0, 2\\*\\*62\\)"),
        ([b"not json"], "header is not JSON"),
        ([b"[" * 100_000 + b"]" * 100_000], "header of 200000 bytes exceeds"),
        ([b"[" * 30_000 + b"]" * 30_000], "nests deeper than 4 levels"),
        ([b'{"protocol": 1, "simulation_id": "s", "step": 0, "time": 1e400, "fields": []}'], "time must be a finite number"),
        (frames_with(header={"parameters": {"nu": float("nan")}}), "parameters must map names to finite numbers"),
        (frames_with(header={"fields": [{"name": "u", "dtype": "float32", "shape": [1] * 70}]}), "at most 8 non-negative"),
        (frames_with(header={"fields": [{"name": "u", "dtype": "float32", "shape": [10**30, 10**30]}]}), "needs 4" + "0" * 60),
        (frames_with(header={"fields": [{"name": "u", "dtype": "float32", "shape": [True, 6]}]}), "non-negative integers"),
        (frames_with(header={"simulation_id": "x" * 300}), "simulation_id must be a string of 1 to 256"),
        (frames_with(header={"step": 10**400}), "step must be an integer"),
        (frames_with(header={"parameters": {"nu": 10**400}}), "undecodable message \\(OverflowError"),
    ],
)
def test_bad_messages_are_rejected_with_a_reason(frames, reason):
    with pytest.raises(ProtocolError, match=reason):
        decode(frames)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
header_keys = st.sampled_from(
    ["protocol", "simulation_id", "step", "time", "parameters", "fields", "name", "dtype", "shape", "n_steps", "times"]
)


@st.composite
def messages(draw):
    """Frames of every kind: raw bytes, JSON of any shape, and headers close to the protocol's
    with one part broken, followed by data frames of any length."""
    kind = draw(st.sampled_from(["bytes", "json", "near"]))
    if kind == "bytes":
        return draw(st.lists(st.binary(max_size=64), max_size=4))
    if kind == "json":
        header = draw(st.dictionaries(header_keys, json_values, max_size=6))
    else:
        shape = draw(st.lists(st.integers(-2, 5) | st.just(True) | json_values, max_size=9))
        spec = {"name": draw(st.text(max_size=4)), "dtype": draw(st.sampled_from([*DTYPES, "complex64", 7])), "shape": shape}
        header = {
            "protocol": draw(st.sampled_from([1, 2, "1"])),
            "simulation_id": draw(st.text(max_size=4)),
            "step": draw(json_values),
            "time": draw(json_values),
            "parameters": draw(json_values),
            "fields": draw(st.sampled_from([[spec], [spec, spec], spec])),
        }
        if draw(st.booleans()):  # a batch of steps, its count and times possibly broken
            header.update(n_steps=draw(st.integers(-1, 3) | json_values), times=draw(st.lists(json_values, max_size=4) | json_values))
    text = json.dumps(header, allow_nan=True).encode()
    return [text, *draw(st.lists(st.binary(max_size=96), max_size=3))]


@settings(max_examples=3_000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(frames=messages())
def test_decode_raises_only_protocol_errors(frames):
    """Whatever arrives, decode returns a message or raises the protocol's own error."""
    try:
        msgs = decode(frames)
    except ProtocolError as e:
        assert e.reason and len(e.reason) < 200
    else:
        assert msgs and all(isinstance(m, StepMessage) and all(np.isfinite(a).all() for a in m.fields.values()) for m in msgs)
