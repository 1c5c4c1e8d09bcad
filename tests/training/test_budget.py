"""The time budget and the learning-rate schedule over it, on a clock the test drives: every
optimizer step takes one second of it, whatever the machine's speed or load."""

import io
import math

import numpy as np
import pytest
import torch

from surrogate.tasks.base import ModelSpec
from surrogate.tasks.grid import build_surrogate
from surrogate.training.progress import TrainProgress
from surrogate.training.schedule import budget_progress, learning_rate
from surrogate.training.trainer import TrainConfig, train

META = {"model": {"name": "fno", "params": {}}, "data_schema": {}}
SCHEMA = {"channel_names": ["u"], "param_names": [], "param_offset": [], "param_scale": [], "space_shape": [8, 8], "n_input": 1}


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedSource:
    """`n` random batches per epoch; drawing one advances the clock by `seconds`."""

    def __init__(self, clock: Clock, n: int, seconds: float = 1.0) -> None:
        self.clock, self.n, self.seconds, self.epoch = clock, n, seconds, 0
        self.gen = torch.Generator().manual_seed(0)

    def __iter__(self):
        self.epoch += 1
        for _ in range(self.n):
            self.clock.now += self.seconds
            x = torch.randn(4, 1, 1, 8, 8, generator=self.gen)
            yield {"x": x, "y": x[:, :1] * 0.5, "params": torch.zeros(4, 0), "mask": torch.ones(4, 1, 8, 8)}

    def __len__(self) -> int:
        return self.n

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = state["epoch"]


def tiny_model():
    torch.manual_seed(0)
    spec = ModelSpec("fno", {"n_modes": [4, 4], "hidden_channels": 4, "n_layers": 1})
    return build_surrogate(spec, SCHEMA, np.zeros(1), np.ones(1))


def run(tmp_path, clock, source, **cfg):
    config = TrainConfig(device="cpu", tensorboard=False, patience=100, **cfg)
    return train(tiny_model(), source, config, tmp_path, META, progress=False, clock=clock)


def test_time_budget_stops_mid_epoch_with_an_annealed_rate(tmp_path):
    """A 1000-step epoch of 1 s steps under a 30 s budget stops at 30 s, not after the epoch."""
    clock = Clock()
    result = run(tmp_path, clock, TimedSource(clock, 1000), epochs=2, lr=1e-2, max_time_s=30)
    assert result.epochs_run == 1 and result.history[-1]["step"] == 30
    assert "time budget of 30 s reached after 30 of 2000 steps" == result.stopped
    assert result.train_s == pytest.approx(30.0) and result.train_s - 30 <= 5
    assert result.history[-1]["epoch_fraction"] == pytest.approx(0.03)
    # the schedule ran over the 30 s used, not over 2000 steps (where step 30 would still be at 99.8 % of the rate)
    assert result.history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert result.warnings and "annealed to zero within the first epoch" in result.warnings[0]


def test_without_a_budget_the_schedule_is_cosine_over_the_steps(tmp_path):
    clock = Clock()
    result = run(tmp_path, clock, TimedSource(clock, 5), epochs=3, lr=1e-2)
    assert result.stopped == "all 3 epochs run" and result.epochs_run == 3 and not result.warnings
    lrs = [h["lr"] for h in result.history]  # the rate of each epoch's last step (steps 4, 9, 14 of 15)
    np.testing.assert_allclose(lrs, [0.5e-2 * (1 + math.cos(math.pi * s / 15)) for s in (4, 9, 14)])


def test_a_resumed_run_gets_the_budget_anew(tmp_path):
    """max_time_s is a batch job's wall limit: each resumed part gets it, the history counts all."""
    clock = Clock()
    first = run(tmp_path, clock, TimedSource(clock, 10), epochs=4, max_time_s=25)
    assert first.history[-1]["step"] == 25 and first.epochs_run == 3
    clock2 = Clock()
    again = train(
        tiny_model(),
        TimedSource(clock2, 10),
        TrainConfig(device="cpu", tensorboard=False, patience=100, epochs=4, max_time_s=25),
        tmp_path,
        META,
        resume=tmp_path / "last.pt",
        progress=False,
        clock=clock2,
    )
    assert again.epochs_run == 4 and again.stopped == "all 4 epochs run" and clock2.now == 10  # epoch 4: partial epoch 3 counts
    assert again.history[-1]["time_s"] == 35 and again.train_s == 10


def test_budget_progress():
    assert budget_progress(10, 100, 5.0, 0) == 0.1
    assert budget_progress(10, 100, 5.0, 10.0) == 0.5
    assert budget_progress(100, 100, 50.0, 10.0) == 1.0
    assert learning_rate(1.0, "constant", 0.7) == 1.0


def test_progress_lines_when_not_a_terminal():
    """In a log file: the expected time after the first steps, then a line per interval that names
    the epoch from 1, never 'epoch 0'."""
    clock, log = Clock(), io.StringIO()
    with TrainProgress(2, 10, clock, stream=log, interval_s=6.0) as bar:
        for i in range(20):
            clock.now += 1.0
            bar.step(1.0 / (i + 1))
            if i == 9:
                bar.epoch_end(1, 0.25)
    lines = log.getvalue().splitlines()
    assert lines[0] == "expected training time: about 20 s (20 steps at 1.00 s/step)"
    steps = [ln for ln in lines[1:] if ln.startswith("train epoch")]
    assert len(steps) == 3  # at 6, 12 and 18 s
    assert steps[0] == "train epoch 1/2 step 6/20 loss 1.667e-01 val - elapsed 6 s of about 20 s"
    assert steps[-1] == "train epoch 2/2 step 18/20 loss 5.556e-02 val 2.500e-01 elapsed 18 s of about 20 s"
    assert not any("epoch 0" in ln for ln in lines)
