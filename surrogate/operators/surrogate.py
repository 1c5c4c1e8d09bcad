"""A trained surrogate: an operator between normalizers, predicting normalized increments."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from surrogate.errors import InputError
from surrogate.operators.constraints.conserved_integrals import conserve_integrals
from surrogate.operators.normalizer import Normalizer


class Surrogate(nn.Module):
    """Next state from the last `n_input` states, in physical units.

    The operator sees the normalized input steps stacked along channels and returns the
    normalized increment of the last step, so that an untrained operator starts near
    persistence and the mask (zero increment in solids) keeps boundary values fixed. The
    increments of the `conserve` channels are projected to zero integral over the cell
    `volumes` (`constraints/conserved_integrals.py`), so those integrals hold exactly.

    Static input fields (constant in time: a bathymetry, a geometry) are normalized by their
    own `static_mean` / `static_std` and stacked after the input steps; the model reads them
    and never predicts them.

    Shapes:
        x       (B, k, C, *space)
        params  (B, P)
        mask    (B, 1, *space) or None
        static  (B, S, *space) or None (S = len(static_mean))
        out     (B, C, *space)
    """

    def __init__(
        self,
        operator: nn.Module,
        normalizer: Normalizer,
        n_input: int,
        conserve: Sequence[int] = (),
        volumes: Tensor | None = None,
        static_mean: Tensor | None = None,
        static_std: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.operator, self.normalizer, self.n_input = operator, normalizer, n_input
        self.conserve = tuple(conserve)
        if self.conserve:  # channels whose domain integral no step may change (cell volumes (*space))
            self.register_buffer("volumes", volumes.float())
        self.n_static = 0 if static_mean is None else len(static_mean)
        if self.n_static:
            shape = (1, self.n_static) + (1,) * normalizer.n_space
            self.register_buffer("static_mean", torch.as_tensor(static_mean, dtype=torch.float32).reshape(shape))
            self.register_buffer("static_std", torch.as_tensor(static_std, dtype=torch.float32).reshape(shape))

    def encode_static(self, static: Tensor | None) -> Tensor | None:
        if not self.n_static:
            return None
        if static is None or static.shape[1] != self.n_static:
            raise InputError(
                f"this surrogate reads {self.n_static} static input channel(s); got {None if static is None else static.shape[1]}"
            )
        return (static - self.static_mean) / self.static_std

    @staticmethod
    def inputs(xn: Tensor, sn: Tensor | None) -> Tensor:
        """The operator's input channels: the input steps stacked, then the static fields."""
        return xn.flatten(1, 2) if sn is None else torch.cat([xn.flatten(1, 2), sn], dim=1)

    def forward_normalized(self, xn: Tensor, pn: Tensor, mask: Tensor | None, sn: Tensor | None = None) -> Tensor:
        """Normalized next state (B, C, *space) from normalized inputs (B, k, C, *space), params
        and static fields (B, S, *space)."""
        delta = self.operator(self.inputs(xn, sn), pn, mask)  # (B, C, *space)
        if self.conserve:
            delta = conserve_integrals(delta, self.volumes, self.conserve, mask)
        return xn[:, -1] + delta

    def forward(self, x: Tensor, params: Tensor, mask: Tensor | None = None, static: Tensor | None = None) -> Tensor:
        xn = self.normalizer.encode(x)
        pn = self.normalizer.encode_params(params)
        return self.normalizer.decode(self.forward_normalized(xn, pn, mask, self.encode_static(static)))
