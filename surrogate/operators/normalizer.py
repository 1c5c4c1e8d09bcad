"""Per-channel normalization as a module, saved with the model it serves."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Normalizer(nn.Module):
    """x_n = (x - mean) / std per channel, p_n = (p - param_offset) / param_scale per parameter.

    The channel dim is the one before the `n_space` space dims.
    Shapes: mean, std (C,); param_offset, param_scale (P,); works on (..., C, *space) and (B, P).
    """

    mean: Tensor
    std: Tensor
    param_offset: Tensor
    param_scale: Tensor

    def __init__(self, mean: Tensor, std: Tensor, n_space: int, param_offset: Tensor, param_scale: Tensor) -> None:
        super().__init__()
        self.n_space = n_space
        f32 = torch.float32
        self.register_buffer("mean", torch.as_tensor(mean, dtype=f32).clone())
        self.register_buffer("std", torch.as_tensor(std, dtype=f32).clone())
        self.register_buffer("param_offset", torch.as_tensor(param_offset, dtype=f32).reshape(-1).clone())
        self.register_buffer("param_scale", torch.as_tensor(param_scale, dtype=f32).reshape(-1).clone())

    def encode_params(self, p: Tensor) -> Tensor:
        return (p - self.param_offset) / self.param_scale

    def _view(self, v: Tensor) -> Tensor:
        return v.view(-1, *[1] * self.n_space)  # (C, 1, ..., 1)

    def encode(self, x: Tensor) -> Tensor:
        return (x - self._view(self.mean)) / self._view(self.std)

    def decode(self, x: Tensor) -> Tensor:
        return x * self._view(self.std) + self._view(self.mean)

    def decode_variance(self, var: Tensor) -> Tensor:
        """A variance (B, C, *space) of normalized values in physical units."""
        return var * self._view(self.std).to(var.dtype) ** 2
