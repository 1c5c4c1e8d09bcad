"""`surrogate online` killed with SIGKILL mid-training, then resumed from its last checkpoint:
the buffer and the finished simulations come back, finished simulations are not rerun."""

import json
import os
import signal
import subprocess
import sys
import time

from surrogate.training.checkpoint import load_checkpoint

# 24 simulations of 48 steps on one Dask worker: finishing them all takes 16x the solver work
# of the 6 x 12 this test used before, which once all finished before the first checkpoint was
# written (a CI run; the kill then left nothing to resume). The kill waits on an event, the
# first checkpoint that lists a finished simulation; this keeps the others unfinished then.
N_SIMULATIONS = 24
SETTINGS = [
    f"stream.n_simulations={N_SIMULATIONS}",
    "stream.resolution=16",
    "stream.n_steps=48",
    "stream.workers=1",
    "stream.watermark=4",
    "stream.buffer_mb=8",
    "train.epochs=6",
    "train.tensorboard=false",
    "steps_per_epoch=3",
    "batch_size=4",
    "test_simulations=3",
    "rollout_steps=2",
]


def online(out, *extra):
    args = [sys.executable, "-m", "surrogate", "online", *[a for s in SETTINGS + [f"out_dir={out}"] for a in ("--set", s)], *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_killed_online_run_resumes_from_its_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = online(out)
    ckpt = out / "last.pt"
    deadline = time.monotonic() + 240
    finished: list[str] = []
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.exists():
            finished = load_checkpoint(ckpt)["source"]["server"]["finished"]
            if finished:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed:\n" + proc.communicate()[0]
    assert finished, "no checkpoint with a finished simulation appeared"
    os.killpg(proc.pid, signal.SIGKILL)  # the trainer, its stream server and its Dask workers
    proc.wait()
    saved = load_checkpoint(ckpt)
    n_finished = len(saved["source"]["server"]["finished"])
    assert 1 <= n_finished < N_SIMULATIONS, f"the kill must leave unfinished simulations for the resumed run ({n_finished} finished)"
    print(f"killed with {n_finished} of {N_SIMULATIONS} simulations finished")
    # Training does not wait for solvers, and the restored buffer lets it start at once: the
    # resumed run waits for the rest of the ensemble after training (an event, not a time).
    resumed = online(out, "--resume", str(ckpt), "--set", f"train.epochs={saved['epoch'] + 2}", "--set", "stream.wait_for_all=true")
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, log
    metrics = json.loads((out / "stream_metrics.json").read_text())
    assert metrics["skipped_finished"] == n_finished
    assert metrics["finished"] == N_SIMULATIONS  # the others streamed to the restarted server
    assert load_checkpoint(out / "last.pt")["epoch"] > saved["epoch"]
