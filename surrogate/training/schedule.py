"""The learning-rate schedule, defined over the training budget actually used.

A run ends at whichever comes first, its step count or its time budget; the schedule's
progress is the larger of the two fractions spent, so a run stopped by its time budget still
ends on an annealed rate, and one that runs all its steps ends exactly as cosine annealing over
those steps (Loshchilov & Hutter 2017, without restarts, to zero).
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "constant")


def budget_progress(step: int, total_steps: int, elapsed_s: float, max_time_s: float) -> float:
    """The fraction of the run's budget spent, in [0, 1]: steps over steps, and when a time
    budget is set, seconds over seconds, whichever is further along."""
    p = step / max(total_steps, 1)
    if max_time_s > 0:
        p = max(p, elapsed_s / max_time_s)
    return min(p, 1.0)


def learning_rate(base: float, kind: str, progress: float) -> float:
    """The rate at `progress` in [0, 1]: cosine from `base` to 0, or constant."""
    if kind == "constant":
        return base
    return 0.5 * base * (1.0 + math.cos(math.pi * progress))
