"""A trained surrogate seen as a Stepper, so that `rollout` treats it like a solver."""

from __future__ import annotations

import torch

from surrogate.fields import GridState
from surrogate.operators.surrogate import Surrogate
from surrogate.stepper import AbstractStepper


class SurrogateStepper(AbstractStepper):
    """Advances a state by one data interval `dt` with `model`.

    A model with `n_input = k > 1` reads the k - 1 previous states from `state.history`.
    """

    def __init__(self, model: Surrogate, dt: float) -> None:
        self.model, self.dt = model.eval(), dt

    @torch.no_grad()
    def step(self, state: GridState) -> GridState:
        k = self.model.n_input
        x = state.fields[:, None]  # (B, 1, C, *space)
        if k > 1:
            x = torch.cat([state.history[:, -(k - 1) :], x], dim=1)  # (B, k, C, *space)
        static = None if state.static is None else state.static.float()
        if getattr(self.model, "probabilistic", False):  # ProbConserv's b needs the step's boundary inflow
            y = self.model(x.float(), state.params.float(), state.mask, static, state.inflow_step())
        else:
            y = self.model(x.float(), state.params.float(), state.mask, static)
        history = x[:, 1:] if k > 1 else None
        return state.evolve(y.to(state.fields.dtype), state.time + self.dt, history)
