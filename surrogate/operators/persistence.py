"""The persistence (identity) baseline: predicts that nothing changes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class PersistenceConfig:
    """No hyper-parameters; channel counts come from the data like every operator's."""

    in_channels: int = 1
    out_channels: int = 1
    n_params: int = 0


class Persistence(nn.Module):
    """Zero increment: wrapped in a `Surrogate`, the next state is the last input state."""

    def __init__(self, in_channels: int = 1, out_channels: int = 1, n_params: int = 0) -> None:
        super().__init__()
        self.out_channels = out_channels
        # One parameter so that optimizers and checkpoints treat it like any operator.
        self.unused = nn.Parameter(torch.zeros(()), requires_grad=False)

    def forward(self, x: Tensor, params: Tensor, mask: Tensor | None = None) -> Tensor:
        return x.new_zeros(x.shape[0], self.out_channels, *x.shape[2:])
