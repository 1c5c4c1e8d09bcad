"""A trained mesh surrogate seen as a Stepper, so that `rollout` treats it like a solver."""

from __future__ import annotations

import torch
from torch_geometric.data import Batch

from surrogate.fields import MeshState
from surrogate.operators.mesh_surrogate import MeshSurrogate
from surrogate.stepper import AbstractStepper


class MeshSurrogateStepper(AbstractStepper):
    """Advances the B simulations of a `MeshState` by one data interval `dt` with `model`."""

    def __init__(self, model: MeshSurrogate, dt: float) -> None:
        self.model, self.dt = model.eval(), dt

    @torch.no_grad()
    def step(self, state: MeshState) -> MeshState:  # type: ignore[override]
        b, c, n = state.fields.shape
        device = next(self.model.parameters()).device
        graph = Batch.from_data_list([state.graph] * b).to(device)  # type: ignore[list-item]
        u = state.fields.permute(0, 2, 1).reshape(b * n, c).float().to(device)  # (B N, C)
        nxt = self.model(graph, u).reshape(b, n, c).permute(0, 2, 1)  # (B, C, N)
        return state.evolve(nxt.to(state.fields), state.time + self.dt)
