"""`surrogate online` end to end with real processes: Dask workers stream NS2D into training."""

import json
import subprocess
import sys


def test_online_training_beats_persistence(tmp_path):
    out = tmp_path / "online"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "surrogate",
            "online",
            "--set",
            f"out_dir={out}",
            "--set",
            "stream.n_simulations=24",
            "--set",
            "train.epochs=10",
            "--set",
            "steps_per_epoch=40",
            "--set",
            "rollout_steps=6",
        ],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    per_step = json.loads((out / "report" / "metrics.json").read_text())["per_step"]
    fno, base = per_step["fno"]["rel_l2"], per_step["persistence"]["rel_l2"]
    assert fno[0] < base[0] and fno[-1] < base[-1], (fno, base)
    stream = json.loads((out / "stream_metrics.json").read_text())
    assert stream["registered"] == 24 and stream["bad"] == {} and stream["duplicates"] == 0
    assert stream["received"] > 0 and not any(out.rglob("*.h5"))  # nothing streamed was written to disk
