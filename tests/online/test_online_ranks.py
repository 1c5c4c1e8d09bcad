"""Two training ranks (gloo), each with its own stream server and buffer, fed by one Dask ensemble."""

import pytest
import torch

from surrogate.tasks.grid import OnlineConfig, run_online_distributed
from surrogate.training.stream import StreamConfig
from surrogate.training.trainer import TrainConfig


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
