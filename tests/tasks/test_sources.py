"""One grid task, two sources: the same `surrogate train` config trains from a store or from a
live solver stream, choosing only `data.source` (real Dask workers and ZeroMQ for the stream)."""

import json

import pytest
import torch

from tests.test_cli import cli


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    gen = cli("generate", "ns2d", "--out", root / "ns2d.h5", "--n-trajectories", 16, "--n-steps", 8, "--resolution", 16, "--burn-in", 2)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    path = root / "grid.yaml"
    path.write_text(
        f"data: {{path: {root / 'ns2d.h5'}, batch_size: 8}}\n"
        "stream: {n_simulations: 16, resolution: 16, n_steps: 8, watermark: 16, steps_per_epoch: 30, test_simulations: 3}\n"
        "model: {name: fno, params: {n_modes: [8, 8], hidden_channels: 16, n_layers: 2}}\n"
        "train: {epochs: 12, lr: 0.003, patience: 100}\n"
        "eval: {rollout_steps: 4}\n"
    )
    return root, path


@pytest.mark.parametrize("source", ["store", "stream"])
def test_grid_task_trains_from_either_source(config, source):
    root, path = config
    out = root / source
    res = cli("train", path, "--set", f"data.source={source}", "--set", f"out_dir={out}")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    per_step = json.loads((out / "report" / "metrics.json").read_text())["per_step"]
    fno, base = per_step["fno"]["rel_l2"], per_step["persistence"]["rel_l2"]
    assert len(fno) == 4 and fno[0] < base[0], (fno, base)
    ck = torch.load(out / "best.pt", weights_only=True)
    assert ck["experiment"]["data"]["source"] == source and ck["data_schema"]["channel_names"] == ["vorticity"]
    assert (out / "stream_metrics.json").is_file() == (source == "stream")
    if source == "stream":
        stream = json.loads((out / "stream_metrics.json").read_text())
        assert stream["registered"] == 16 and stream["received"] > 0 and stream["bad"] == {}
        assert not any(out.rglob("*.h5"))  # nothing streamed was written to disk


def test_stream_source_refuses_windows_it_cannot_give(config):
    _, path = config
    res = cli("train", path, "--set", "data.source=stream", "--set", "data.n_input=2")
    assert res.returncode == 2 and "data.source stream" in res.stdout and "Traceback" not in res.stderr


def test_unknown_source_is_named(config):
    _, path = config
    res = cli("train", path, "--set", "data.source=disk")
    assert res.returncode == 2 and "data.source 'disk'" in res.stdout
