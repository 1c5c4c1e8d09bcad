"""Training progress for people: a rich bar in a terminal, a plain line every `interval_s`
seconds when output goes to a log file, CI or a batch job, and the expected training time
once the first steps have been timed."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

ESTIMATE_AFTER_STEPS = 5  # steps timed, after the first, before the expected training time is announced


def minutes(seconds: float) -> str:
    """'42 s', '3.5 min' or '1.2 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class TrainProgress:
    """Progress of one training run of `epochs` epochs of `steps_per_epoch` optimizer steps.

    `clock` is the trainer's clock (seconds); `stream` defaults to stderr. `enabled=False`
    prints nothing. Use as a context manager; call `step` after every optimizer step and
    `epoch_end` after every validation.
    """

    def __init__(
        self,
        epochs: int,
        steps_per_epoch: int,
        clock: Callable[[], float],
        enabled: bool = True,
        stream: TextIO | None = None,
        interval_s: float = 30.0,
        max_time_s: float = 0.0,
    ) -> None:
        self.epochs, self.steps_per_epoch, self.clock, self.enabled = epochs, steps_per_epoch, clock, enabled
        self.total = epochs * steps_per_epoch
        self.interval_s, self.max_time_s = interval_s, max_time_s
        self.console = Console(file=stream or sys.stderr, highlight=False)
        self.terminal = self.console.is_terminal
        self.bar: Progress | None = None
        self.epoch, self.step_count, self.loss, self.val = 1, 0, math.nan, "-"
        self.first_step, self.start, self.last_line, self.estimated = 0, 0.0, 0.0, False
        self.first_step_end = 0.0

    def __enter__(self) -> TrainProgress:
        self.start = self.last_line = self.clock()
        if self.enabled and self.terminal:
            self.bar = Progress(
                TextColumn("[bold]train[/] epoch {task.fields[epoch]}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} steps"),
                TextColumn("loss {task.fields[loss]:.3e}  val {task.fields[val]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("train", total=self.total, epoch=self.label(), loss=math.nan, val="-")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def label(self) -> str:
        return f"{min(self.epoch, self.epochs)}/{self.epochs}"

    def resume_at(self, epoch_done: int, step: int) -> None:
        """Continue the count of a resumed run: `epoch_done` epochs and `step` steps behind it."""
        self.epoch, self.step_count, self.first_step = epoch_done + 1, step, step
        if self.bar is not None:
            self.bar.update(self.task, completed=step, epoch=self.label())

    def step(self, loss: float) -> None:
        self.step_count += 1
        self.loss = loss
        if not self.enabled:
            return
        now = self.clock()
        done = self.step_count - self.first_step
        if done == 1:  # the first step pays for allocation and warm-up: time the ones after it
            self.first_step_end = now
        if not self.estimated and done > ESTIMATE_AFTER_STEPS:
            self.estimated = True
            self.say(self.estimate(now))
        if self.bar is not None:
            self.bar.update(self.task, completed=self.step_count, loss=loss)
        elif now - self.last_line >= self.interval_s:
            self.last_line = now
            self.say(self.line(now))

    def epoch_end(self, epoch_done: int, val: float) -> None:
        self.epoch, self.val = epoch_done + 1, f"{val:.3e}"
        if self.bar is not None:
            self.bar.update(self.task, epoch=self.label(), val=self.val)

    def estimate(self, now: float) -> str:
        """The expected training time, from the steps timed so far (validation not included)."""
        per_step = (now - self.first_step_end) / max(self.step_count - self.first_step - 1, 1)
        expected = (self.first_step_end - self.start) + per_step * (self.total - self.first_step - 1)
        text = f"expected training time: about {minutes(expected)} ({self.total - self.first_step} steps at {per_step:.2f} s/step"
        if self.max_time_s and expected > self.max_time_s:
            text += f"; the time budget of {minutes(self.max_time_s)} will stop it first"
        return text + ")"

    def line(self, now: float) -> str:
        elapsed = now - self.start
        done = max(self.step_count - self.first_step, 1)
        expected = elapsed / done * (self.total - self.first_step)
        return (
            f"train epoch {self.label()} step {self.step_count}/{self.total} loss {self.loss:.3e} val {self.val} "
            f"elapsed {minutes(elapsed)} of about {minutes(expected)}"
        )

    def say(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, soft_wrap=True)
