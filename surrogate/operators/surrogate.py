"""A trained surrogate: an operator between normalizers, predicting normalized increments."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from surrogate.operators.constraints.conserved_integrals import conserve_integrals
from surrogate.operators.normalizer import Normalizer


class Surrogate(nn.Module):
    """Next state from the last `n_input` states, in physical units.

    The operator sees the normalized input steps stacked along channels and returns the
    normalized increment of the last step, so that an untrained operator starts near
    persistence and the mask (zero increment in solids) keeps boundary values fixed. The
    increments of the `conserve` channels are projected to zero integral over the cell
    `volumes` (`constraints/conserved_integrals.py`), so those integrals hold exactly.

    Shapes:
        x       (B, k, C, *space)
        params  (B, P)
        mask    (B, 1, *space) or None
        out     (B, C, *space)
    """

    def __init__(
        self, operator: nn.Module, normalizer: Normalizer, n_input: int, conserve: Sequence[int] = (), volumes: Tensor | None = None
    ) -> None:
        super().__init__()
        self.operator, self.normalizer, self.n_input = operator, normalizer, n_input
        self.conserve = tuple(conserve)
        if self.conserve:  # channels whose domain integral no step may change (cell volumes (*space))
            self.register_buffer("volumes", volumes.float())

    def forward_normalized(self, xn: Tensor, pn: Tensor, mask: Tensor | None) -> Tensor:
        """Normalized next state (B, C, *space) from normalized inputs (B, k, C, *space) and params."""
        delta = self.operator(xn.flatten(1, 2), pn, mask)  # (B, C, *space)
        if self.conserve:
            delta = conserve_integrals(delta, self.volumes, self.conserve, mask)
        return xn[:, -1] + delta

    def forward(self, x: Tensor, params: Tensor, mask: Tensor | None = None) -> Tensor:
        xn = self.normalizer.encode(x)
        pn = self.normalizer.encode_params(params)
        return self.normalizer.decode(self.forward_normalized(xn, pn, mask))
