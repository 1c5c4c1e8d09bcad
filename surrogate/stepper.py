"""The Stepper contract: anything that advances a `GridState` (or a `MeshState`) in time.

Numerical solvers and trained surrogates both implement it, so one generic
`evaluation.rollout` compares them and data generation is a rollout of a solver.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from surrogate.fields import GridState


class AbstractStepper(ABC):
    """`state = s.step(state)` advances every simulation of the batch by `dt`."""

    dt: float

    @abstractmethod
    def step(self, state: GridState) -> GridState:
        """Advance all B simulations by one step of `self.dt`."""
