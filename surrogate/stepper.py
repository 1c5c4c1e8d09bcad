"""The Stepper contract: anything that advances a `GridState` (or a `MeshState`) in time.

Numerical solvers and trained surrogates both implement it, so one generic
`evaluation.rollout` compares them and data generation is a rollout of a solver.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from surrogate.fields import GridState, MeshState

State = TypeVar("State", bound=GridState | MeshState)


class AbstractStepper(ABC, Generic[State]):
    """`state = s.step(state)` advances every simulation of the batch by `dt` (grid solvers and
    surrogates step a `GridState`, mesh surrogates a `MeshState`)."""

    dt: float

    @abstractmethod
    def step(self, state: State) -> State:
        """Advance all B simulations by one step of `self.dt`."""
