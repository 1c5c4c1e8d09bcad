"""The CLI end to end, as a user runs it: real subprocesses, exit codes, messages."""

import json
import subprocess
import sys

import numpy as np
import pytest


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "surrogate", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    gen = cli("generate", "ns2d", "--out", root / "d.h5", "--n-trajectories", 10, "--n-steps", 8, "--resolution", 16, "--burn-in", 2)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    cfg = root / "c.yaml"
    cfg.write_text(
        f"data: {{path: {root / 'd.h5'}, batch_size: 8}}\n"
        "model: {name: fno, params: {n_modes: [8, 8], hidden_channels: 8, n_layers: 2}}\n"
        "train: {epochs: 2}\n"
        f"eval: {{rollout_steps: 5}}\nout_dir: {root / 'run'}\n"
    )
    res = cli("train", cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    return root, res


def test_train_prints_table_and_writes_report(trained):
    root, res = trained
    assert "persistence" in res.stdout and "fno" in res.stdout and "report:" in res.stdout
    metrics = json.loads((root / "run" / "report" / "metrics.json").read_text())
    assert len(metrics["per_step"]["fno"]["rel_l2"]) == 5
    assert (root / "run" / "metrics.jsonl").read_text().count("\n") == 2


def test_rollout_command(trained):
    root, _ = trained
    res = cli("rollout", root / "run" / "best.pt", root / "d.h5", "--steps", 3, "--out", root / "ro")
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(json.loads((root / "ro" / "metrics.json").read_text())["per_step"]["persistence"]["rmse"]) == 3


def test_bad_inputs_exit_2_with_a_message(trained, tmp_path):
    root, _ = trained
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("train: {epochz: 3}\n")
    res = cli("train", bad_cfg)
    assert res.returncode == 2 and f"{bad_cfg}: train: unknown key(s) ['epochz']" in res.stdout
    res = cli("train", root / "c.yaml", "--set", "model.name=fnoo")
    assert (
        res.returncode == 2
        and "model.name 'fnoo': a grid model is one of ['fno', 'factformer', 'persistence', 'gaussian_fno', 'deep_ensemble']" in res.stdout
    )
    res = cli("train", root / "c.yaml", "--set", "train.epochs=-1")
    assert res.returncode == 2 and "c.yaml with --set train.epochs=-1: train: need epochs >= 1" in res.stdout
    res = cli("train", root / "c.yaml", "--set", "data.fields=[pressure]")
    assert res.returncode == 2 and "fields ['pressure'] not in the store" in res.stdout
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    res = cli("rollout", junk, root / "d.h5")
    assert res.returncode == 2 and "junk.pt: not a readable checkpoint" in res.stdout
    res = cli("rollout", root / "run" / "best.pt", tmp_path / "missing.h5")
    assert res.returncode == 2 and "missing.h5" in res.stdout
    res = cli("generate", "ns2d", "--out", tmp_path / "x.h5", "--resolution", 15)
    assert res.returncode == 2 and "even number" in res.stdout
    assert not (tmp_path / "x.h5").exists()


def test_rollout_requests_it_cannot_serve_exit_2_and_write_nothing(trained, tmp_path):
    """Nothing half-written: a bad request fails before the report folder exists, and a rollout
    longer than the store says how long it was."""
    root, _ = trained
    best = root / "run" / "best.pt"
    for args, message in (
        (("--steps", 0), "rollout steps 0: expected at least 1"),
        (("--split", "bogus"), "split 'bogus': expected one of ['train', 'valid', 'test']"),
        (("--long-steps", -5), "long rollout steps -5: expected 0 (none) or more"),
    ):
        res = cli("rollout", best, root / "d.h5", *args, "--out", tmp_path / "r")
        assert res.returncode == 2 and message in res.stdout and "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
        assert not (tmp_path / "r").exists() and list(tmp_path.iterdir()) == []
    res = cli("rollout", best, root / "d.h5", "--steps", 50, "--out", tmp_path / "r")
    assert res.returncode == 0 and "50 rollout steps were asked; the store holds 7 after the 1 input step(s)" in res.stdout
    page = (tmp_path / "r" / "index.html").read_text()
    assert "50 rollout steps were asked" in page and "fno (" in page and "all 2 epochs run" in page
    assert len(json.loads((tmp_path / "r" / "metrics.json").read_text())["time"]) == 7


def test_piped_tables_keep_their_columns(trained):
    """Summary tables printed into a pipe are not cut at 80 columns."""
    _, res = trained
    header = next(line for line in res.stdout.splitlines() if "persistence" in line and "fno" in line)
    assert "persistence / fno" in header


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_nan_in_any_split_exits_2_and_names_it(trained, tmp_path, split):
    """NaN in a store's data ends training with exit 2 and a message naming the data, never with
    a missing best.pt or NaN in metrics.json."""
    import shutil

    import h5py

    root, _ = trained
    data = tmp_path / "nan.h5"
    shutil.copy(root / "d.h5", data)
    with h5py.File(data, "r+") as f:
        traj = int(f["splits"][split][0])
        f["t0_fields/vorticity"][traj, 1, 3, 3] = np.nan
    res = cli("train", root / "c.yaml", "--set", f"data.path={data}", "--set", f"out_dir={tmp_path / 'run'}", "--set", "train.epochs=1")
    assert res.returncode == 2 and "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
    expected = "fields ['vorticity'] contain NaN/Inf in split 'train'" if split == "train" else f"trajectories [{traj}] hold NaN/Inf values"
    assert expected in res.stdout
    assert not (tmp_path / "run" / "report" / "metrics.json").exists()


def test_one_run_per_out_dir(trained, tmp_path):
    """A second run on an out_dir that a live run holds is refused; a dead run's lock is taken over."""
    import os

    root, _ = trained
    out = tmp_path / "run"
    out.mkdir()
    (out / ".surrogate.lock").write_text(str(os.getpid()))  # held by a live process: this test
    res = cli("train", root / "c.yaml", "--set", f"out_dir={out}", "--set", "train.epochs=1")
    assert res.returncode == 2 and f"another run (process {os.getpid()}) is writing to this out_dir" in res.stdout
    assert sorted(p.name for p in out.iterdir()) == [".surrogate.lock"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    (out / ".surrogate.lock").write_text(dead)  # left by a run that was killed
    res = cli("train", root / "c.yaml", "--set", f"out_dir={out}", "--set", "train.epochs=1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / "report" / "index.html").is_file() and not (out / ".surrogate.lock").exists()


def test_watch_without_a_server_says_how_to_start_one(tmp_path):
    res = cli("watch", tmp_path, "--data", "tcp://127.0.0.1:5", "--control", "tcp://127.0.0.1:7", "--idle-s", "1")
    assert res.returncode == 2 and "is a stream server listening there?" in res.stdout and "StreamServer" in res.stdout


def test_help_explains():
    res = cli("--help")
    assert res.returncode == 0
    for cmd in ("generate", "convert", "train", "rollout", "info"):
        assert cmd in res.stdout
    res = cli("convert", "channel", "--help")
    assert "[u v w p]" in res.stdout  # brackets are text, not markup
