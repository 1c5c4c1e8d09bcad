"""The soft-constraint baseline of Chalapathi et al.: the operator predicts the space-time
field directly and the PDE enters only through the training loss (`SpacetimePDE.loss`).

Shapes: u0 (B, *space); params (B, P); output u (B, T, *space), float64 like the hard ones.
"""

from __future__ import annotations

from torch import Tensor, nn

from surrogate.operators.constraints.hard_constrained_operator import spacetime_input


class SoftConstrainedOperator(nn.Module):
    """`operator` (B, 1, T, *space) + params -> (B, 1, T, *space), read as u."""

    def __init__(self, operator: nn.Module, n_times: int) -> None:
        super().__init__()
        self.operator, self.n_times = operator, n_times

    def forward(self, u0: Tensor, params: Tensor) -> Tensor:
        x = spacetime_input(u0, self.n_times).float()
        return self.operator(x, params.float())[:, 0].double()
