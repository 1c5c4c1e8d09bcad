"""One generic autoregressive rollout for every Stepper: solvers and surrogates alike."""

from __future__ import annotations

from collections.abc import Callable

import torch

from surrogate.fields import Trajectory
from surrogate.stepper import AbstractStepper, State


@torch.no_grad()
def rollout(
    stepper: AbstractStepper[State],
    state0: State,
    n_steps: int,
    on_step: Callable[[int], None] | None = None,
) -> Trajectory:
    """Advance `state0` by `n_steps` steps of `stepper`, keeping every state.

    Shapes: returns fields (B, n_steps + 1, C, *space) with the initial state first.
    """
    states, times = [state0.fields], [state0.time]
    state = state0
    for i in range(n_steps):
        state = stepper.step(state)
        states.append(state.fields)
        times.append(state.time)
        if on_step is not None:
            on_step(i + 1)
    return Trajectory(torch.stack(states, dim=1), torch.stack(times, dim=1), state0.field_names)
