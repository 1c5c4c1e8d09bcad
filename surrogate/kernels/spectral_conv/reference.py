"""The FNO spectral convolution in plain PyTorch, with neuraloperator's conventions.

rfftn with norm="forward" (1/n on the forward transform), keep `m` frequencies along every
axis but the last, -(m // 2) .. m - m // 2 - 1 in that order (fftshift order), and the first
`m` of the last (Hermitian) axis; contract channels mode by mode with the complex weight;
zero-fill; irfftn. This is what neuraloperator's dense `SpectralConv` computes.

Shapes: x (B, C_in, *space) real; weight (C_in, C_out, *modes) complex; out (B, C_out, *space).
"""

from __future__ import annotations

import torch
from torch import Tensor

from surrogate.errors import InputError


def kept_frequencies(n: int, m: int, last: bool) -> Tensor:
    """The integer frequencies kept along an axis of n points with m modes."""
    if last:
        if m > n // 2 + 1:
            raise InputError(f"spectral conv: {m} modes on the last axis of {n} points; at most {n // 2 + 1}")
        return torch.arange(m)
    if m > n:
        raise InputError(f"spectral conv: {m} modes on an axis of {n} points; at most {n}")
    return torch.arange(-(m // 2), m - m // 2)


def check_shapes(x: Tensor, weight: Tensor) -> None:
    d = weight.ndim - 2
    if x.ndim != d + 2 or x.shape[1] != weight.shape[0]:
        raise InputError(
            f"spectral conv: x {tuple(x.shape)} does not match weight {tuple(weight.shape)} "
            f"(expected x (B, {weight.shape[0]}, {d} space dims))"
        )


def spectral_conv_reference(x: Tensor, weight: Tensor) -> Tensor:
    check_shapes(x, weight)
    d = weight.ndim - 2
    space = x.shape[2:]
    dims = tuple(range(-d, 0))
    xf = torch.fft.rfftn(x.float(), dim=dims, norm="forward")  # (B, C_in, *space[:-1], n_last // 2 + 1)
    index = [kept_frequencies(n, m, a == d - 1) % n for a, (n, m) in enumerate(zip(space, weight.shape[2:]))]
    sub = xf[(slice(None), slice(None), *torch.meshgrid(*index, indexing="ij"))]  # (B, C_in, *modes)
    yk = torch.einsum("bi...,io...->bo...", sub, weight.to(sub.dtype))  # (B, C_out, *modes)
    out = torch.zeros(x.shape[0], weight.shape[1], *xf.shape[2:], dtype=xf.dtype, device=x.device)
    out[(slice(None), slice(None), *torch.meshgrid(*index, indexing="ij"))] = yk
    return torch.fft.irfftn(out, s=space, dim=dims, norm="forward")
