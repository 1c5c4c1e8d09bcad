"""Per-channel normalization as a module, saved with the model it serves."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Normalizer(nn.Module):
    """x_n = (x - mean) / std per channel; the channel dim is the one before the `n_space` dims.

    Shapes: mean, std (C,); works on (..., C, *space) tensors.
    """

    def __init__(self, mean: Tensor, std: Tensor, n_space: int) -> None:
        super().__init__()
        self.n_space = n_space
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).clone())
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).clone())

    def _view(self, v: Tensor) -> Tensor:
        return v.view(-1, *[1] * self.n_space)  # (C, 1, ..., 1)

    def encode(self, x: Tensor) -> Tensor:
        return (x - self._view(self.mean)) / self._view(self.std)

    def decode(self, x: Tensor) -> Tensor:
        return x * self._view(self.std) + self._view(self.mean)
