"""DistributedDataParallel on 2 CPU processes (gloo) reproduces the single-process run."""

import pytest
import torch

from surrogate.config import load_config
from surrogate.errors import InputError
from surrogate.generate import NS2DDataConfig, generate_ns2d
from surrogate.tasks.grid import GridConfig, run_train, run_train_distributed
from surrogate.training.checkpoint import load_checkpoint


def config(store, out, **extra):
    overrides = [
        f"data.path={store}",
        "data.batch_size=8",
        "model.params={n_modes: [8, 8], hidden_channels: 8, n_layers: 2}",
        "train.epochs=2",
        "train.lr=0.003",
        "eval.rollout_steps=3",
        "eval.val_rollout_steps=2",
        f"out_dir={out}",
    ] + [f"{k}={v}" for k, v in extra.items()]
    return load_config(GridConfig, None, overrides)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    cfg = NS2DDataConfig(resolution=16, n_trajectories=10, n_steps=8, dt=0.25, seed=5)
    return generate_ns2d(cfg, tmp_path_factory.mktemp("ddp") / "s.h5")


def test_two_processes_match_one_on_the_same_global_batch(store, tmp_path):
    single = run_train(config(store, tmp_path / "one"), progress=False)
    double = run_train_distributed(config(store, tmp_path / "two"), nproc=2)
    for a, b in zip(single.train.history, double.train.history):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["val"] == pytest.approx(a["val"], rel=1e-4)
    w1 = load_checkpoint(tmp_path / "one" / "last.pt")
    w2 = load_checkpoint(tmp_path / "two" / "last.pt")
    assert w2["world_size"] == 2
    for k in w1["state_dict"]:
        torch.testing.assert_close(w1["state_dict"][k], w2["state_dict"][k], rtol=1e-4, atol=1e-5)
    # A checkpoint written by 2 ranks resumes on 1.
    resumed = run_train(config(store, tmp_path / "two", **{"train.epochs": 3}), resume=tmp_path / "two" / "last.pt", progress=False)
    assert resumed.train.epochs_run == 3


def test_bad_process_counts(store, tmp_path):
    with pytest.raises(InputError, match="larger than the 8 training trajectories"):
        run_train_distributed(config(store, tmp_path / "x"), nproc=9)
    with pytest.raises(InputError, match="not divisible by --nproc 3"):
        run_train_distributed(config(store, tmp_path / "x"), nproc=3)
