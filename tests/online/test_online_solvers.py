"""`surrogate online` from the user's own solver, with real processes: the C heat example run
as a `command` ensemble, and Python clients started apart from the run that `attach` to it."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from surrogate.errors import InputError
from surrogate.training.stream import StreamConfig
from tests.online.test_c_client import heat_example  # noqa: F401  (the compiled C solver, a fixture)
from tests.online.test_stream import wait_for

N = 64


def online(config, *overrides, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "surrogate", "online", str(config), *[a for o in overrides for a in ("--set", o)]],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_config(path, out, stream: str, held_out=2, model="{name: fno, params: {n_modes: [8], hidden_channels: 8, n_layers: 2}}") -> None:
    path.write_text(
        f"stream: {stream}\nmodel: {model}\ntrain: {{epochs: 2, lr: 3.0e-3, patience: 100}}\n"
        f"batch_size: 8\nsteps_per_epoch: 10\nrollout_steps: 6\ntest_simulations: {held_out}\nout_dir: {out}\n"
    )


def test_online_trains_from_the_c_solver_run_as_a_command(heat_example, tmp_path):  # noqa: F811
    out, cfg = tmp_path / "run", tmp_path / "heat.yaml"
    command = f"{heat_example} $SURROGATE_DATA $SURROGATE_CONTROL $SURROGATE_SIMULATION_ID 20 {{kappa}}"
    write_config(
        cfg,
        out,
        f'{{solver: command, command: "{command}", parameters: {{kappa: [0.01, 0.05]}}, n_simulations: 4, '
        "watermark: 8, buffer_mb: 2, wait_for_all: true}",
    )
    res = online(cfg)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    stream = json.loads((out / "stream_metrics.json").read_text())
    # 4 training and 2 held-out simulations of 21 steps each; pairs only from the training ones
    assert stream["registered"] == 6 and stream["finished"] == 6 and stream["received"] == 6 * 21
    assert stream["pairs"] == 4 * 20 and stream["bad"] == {} and stream["duplicates"] == 0
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    base, model = metrics["per_step"]["persistence"]["rel_l2"], metrics["per_step"]["fno"]["rel_l2"]
    # the held-out truth is the C solver's exact discrete solution: u_k = g^k sin(2 pi x), whatever kappa
    g = 1 - 4 * 0.2 * math.sin(math.pi / N) ** 2
    np.testing.assert_allclose(base, [(1 - g**k) / g**k for k in range(1, 7)], rtol=1e-3)
    assert all(math.isfinite(v) for v in model)
    ck = (out / "best.pt").is_file()
    assert ck and not any(out.rglob("*.h5"))


ADVECT = """
import sys, numpy as np
from surrogate.online.client import OnlineClient
data, control, sim, c = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
x = np.arange(64) / 64
with OnlineClient(data, control, sim, {"speed": c}) as client:
    for k in range(16):
        client.send(k, 0.05 * k, {"u": np.sin(2 * np.pi * (x - c * 0.05 * k)).astype(np.float32)})
"""


def test_online_takes_clients_that_attach(tmp_path):
    # Training starts once the buffer holds all 60 pairs of the 4 training clients (the
    # watermark); the first client to connect is held out.
    out, cfg = tmp_path / "run", tmp_path / "attach.yaml"
    write_config(cfg, out, "{solver: attach, parameters: {speed: [0.0, 1.0]}, watermark: 60, timeout_s: 300}", held_out=1)
    run = subprocess.Popen(
        [sys.executable, "-m", "surrogate", "online", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        where = out / "stream.json"  # written atomically once the server listens
        wait_for(lambda: where.is_file() or run.poll() is not None, timeout=300)
        assert run.poll() is None, run.stdout.read() if run.stdout else ""
        addresses = json.loads(where.read_text())
        data, control = addresses["data"][0], addresses["control"][0]
        clients = [
            subprocess.run([sys.executable, "-c", ADVECT, data, control, f"mine-{i}", str(c)], capture_output=True, text=True, timeout=120)
            for i, c in enumerate([0.5, 0.1, 0.3, 0.7, 0.9])
        ]
        assert all(c.returncode == 0 for c in clients), [c.stderr[-500:] for c in clients]
        log, _ = run.communicate(timeout=600)
    finally:
        run.kill()
    assert run.returncode == 0, log[-3000:]
    stream = json.loads((out / "stream_metrics.json").read_text())
    assert stream["registered"] == 5 and stream["finished"] == 5 and stream["received"] == 5 * 16
    assert stream["pairs"] == 4 * 15 and stream["bad"] == {}  # the first client was held out
    per_step = json.loads((out / "report" / "metrics.json").read_text())["per_step"]
    base = per_step["persistence"]["rel_l2"]
    # held out: the first client (speed 0.5), a sine shifted by 0.025 k: |1 - e^{-2 pi i 0.025 k}|
    np.testing.assert_allclose(base, [2 * abs(math.sin(math.pi * 0.025 * k)) for k in range(1, 7)], rtol=1e-4)
    assert all(math.isfinite(v) for v in per_step["fno"]["rel_l2"])


@pytest.mark.parametrize(
    "stream, expected",
    [
        ({"solver": "command"}, "set stream.command"),
        ({"solver": "openfoam", "case": "nowhere"}, "not an OpenFOAM case folder"),
        ({"solver": "gpme-heat", "parameters": {"nu": [1, 2]}}, "gpme-heat has the parameters \\['conductivity'\\]"),
        ({"solver": "command", "command": "x", "parameters": {"nu": [2, 1]}}, "expected \\[low, high\\]"),
    ],
)
def test_solver_configuration_errors_name_the_key(stream, expected):
    with pytest.raises(InputError, match=expected):
        StreamConfig(**stream)


def test_online_trains_from_another_builtin_solver(tmp_path):
    """GPME's heat case over its conductivity range, streamed by the built-in runner."""
    out, cfg = tmp_path / "run", tmp_path / "gpme.yaml"
    stream = "{solver: gpme-heat, resolution: 32, n_steps: 12, n_simulations: 4, watermark: 8, buffer_mb: 2, wait_for_all: true}"
    write_config(cfg, out, stream)
    res = online(cfg)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    stream = json.loads((out / "stream_metrics.json").read_text())
    assert stream["finished"] == 6 and stream["received"] == 6 * 13 and stream["pairs"] == 4 * 12 and stream["bad"] == {}
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert all(math.isfinite(v) for v in metrics["per_step"]["fno"]["rel_l2"])
    assert json.loads((out / "report" / "metrics.json").read_text())["per_step"]["persistence"]["rel_l2"][0] > 0
