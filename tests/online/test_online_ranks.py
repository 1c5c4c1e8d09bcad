"""Two training ranks (gloo), each with its own stream server and buffer, fed by one Dask ensemble."""

import pytest
import torch

from surrogate.tasks.grid import OnlineConfig, run_online_distributed
from surrogate.training.stream import StreamConfig
from surrogate.training.trainer import TrainConfig
from tests.online.test_stream import wait_for


def config(tmp_path, n_simulations, timeout_s=120.0):
    stream = StreamConfig(
        n_simulations=n_simulations,
        resolution=16,
        dt=0.25,
        n_steps=6,
        workers=1,
        buffer="reservoir",
        buffer_mb=8.0,
        watermark=4,
        timeout_s=timeout_s,
    )
    train = TrainConfig(epochs=2, lr=3e-3, patience=100, tensorboard=False, amp=False)
    return OnlineConfig(
        stream=stream, train=train, batch_size=4, steps_per_epoch=3, test_simulations=3, rollout_steps=2, out_dir=str(tmp_path / "run")
    )


def test_two_ranks_each_receive_their_share_and_train_one_model(tmp_path):
    result = run_online_distributed(config(tmp_path, 4), nproc=2, progress=False)
    metrics = __import__("json").loads((tmp_path / "run" / "stream_metrics.json").read_text())
    assert [m["registered"] for m in metrics["ranks"]] == [2, 2]  # simulations 0, 2 to rank 0; 1, 3 to rank 1
    assert all(m["received"] >= 4 for m in metrics["ranks"])
    assert result.train.epochs_run == 2 and (tmp_path / "run" / "best.pt").exists()


def test_a_rank_whose_stream_runs_dry_stops_every_rank(tmp_path):
    """One simulation feeds rank 0 only: rank 1 times out and both ranks stop, neither hangs."""
    with pytest.raises(torch.multiprocessing.ProcessRaisedException, match="stream delivered no 4 training pairs"):
        run_online_distributed(config(tmp_path, 1, timeout_s=5.0), nproc=2, progress=False)


SOLVER = """
import os, sys, time
import numpy as np
from surrogate.online.client import OnlineClient
sim, nu, marks = os.environ["SURROGATE_SIMULATION_ID"], float(sys.argv[1]), sys.argv[2]
hang = sim == "command-0-1" and not os.path.exists(os.path.join(marks, "hung"))  # streams to rank 1
open(os.path.join(marks, "hung"), "a").close()
x = np.arange(16) / 16
with OnlineClient(os.environ["SURROGATE_DATA"], os.environ["SURROGATE_CONTROL"], sim, {"nu": nu}) as c:
    for k in range(9):
        c.send(k, 0.1 * k, {"u": (np.exp(-nu * k) * np.sin(2 * np.pi * x)).astype(np.float32)})
        if hang and k == 3:  # silent from here on: rank 0's watchdog must hear it from rank 1's server
            c.heartbeat()
            while not os.path.exists(os.path.join(marks, "release")):
                time.sleep(0.05)
            os._exit(0)
"""


def test_two_ranks_resubmit_a_silent_solver_of_rank_1_and_resume_after_a_kill(tmp_path):
    """Rank 1's solver goes silent: the watchdog (rank 0) resubmits it from rank 1's server's
    account. Then the whole run is killed and resumed on two ranks: every rank's server comes
    back, and no simulation that finished on either rank runs again."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from surrogate.training.checkpoint import load_checkpoint

    (tmp_path / "solver.py").write_text(SOLVER)
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "run"
    settings = [
        "stream.solver=command",
        f"stream.command={sys.executable} {tmp_path / 'solver.py'} {{nu}} {marks}",
        "stream.parameters={nu: [0.1, 0.5]}",
        "stream.n_simulations=6",
        "stream.workers=2",
        "stream.watermark=4",
        "stream.buffer_mb=1",
        "stream.silent_s=2",
        "stream.wait_for_all=true",
        "model.params={n_modes: [4], hidden_channels: 4, n_layers: 1}",
        "batch_size=4",
        "steps_per_epoch=2",
        "test_simulations=1",
        "rollout_steps=2",
        "train.tensorboard=false",
        f"out_dir={out}",
    ]

    def online(*extra, resume=()):
        sets = [a for s in [*settings, *extra] for a in ("--set", s)]
        args = [sys.executable, "-m", "surrogate", "online", "--nproc", "2", *resume, *sets]
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)

    run = online("train.epochs=100000")
    ckpt, finished = out / "last.pt", [[], []]
    try:
        wait_for(lambda: run.poll() is not None or (ckpt.exists() and "command-0-1" in checkpoint_finished(ckpt)[1]), timeout=300)
        assert run.poll() is None, run.communicate()[0][-3000:]
        finished = checkpoint_finished(ckpt)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the trainers, their servers and the Dask workers
        run.wait()
        (marks / "release").touch()
    saved = load_checkpoint(ckpt)
    assert len(saved["source"]["ranks"]) == 2 and "command-0-1" in saved["source"]["ranks"][1]["finished"]
    resumed = online(f"train.epochs={saved['epoch'] + 1}", resume=("--resume", str(ckpt)))
    log = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, log[-3000:]
    metrics = json.loads((out / "stream_metrics.json").read_text())
    done_before = set(saved["source"]["ranks"][0]["finished"]) | set(saved["source"]["ranks"][1]["finished"])
    assert metrics["skipped_finished"] == len(done_before) and metrics["skipped_finished"] >= 2
    assert sum(m["finished"] for m in metrics["ranks"]) == 7  # 6 training and 1 held-out simulation, over both ranks
    assert set(finished[1]) <= set(saved["source"]["ranks"][1]["finished"])


def checkpoint_finished(path):
    from surrogate.training.checkpoint import load_checkpoint

    try:
        ranks = load_checkpoint(path)["source"].get("ranks", [])
    except Exception:  # being replaced while read
        return [[], []]
    return [list(r["finished"]) for r in ranks] or [[], []]
