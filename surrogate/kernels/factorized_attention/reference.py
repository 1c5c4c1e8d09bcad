"""Factorized (axial) kernel application in plain PyTorch: the einsum chain of FactFormer.

out[b, h, i_1, .., i_d, c] = sum_j K_1[b, h, i_1, j_1] ... K_d[b, h, i_d, j_d] v[b, h, j_1, .., j_d, c]

Shapes: v (B, H, *space, C); kernels, one per space axis, K_a (B, H, n_a, n_a).
"""

from __future__ import annotations

import string

import torch
from torch import Tensor

from surrogate.errors import InputError


def check_shapes(v: Tensor, kernels: list[Tensor]) -> None:
    space = v.shape[2:-1]
    if len(kernels) != len(space):
        raise InputError(f"axial kernels: {len(kernels)} given for a field of {len(space)} space axes {tuple(v.shape)}")
    for a, (k, n) in enumerate(zip(kernels, space)):
        if k.shape != (*v.shape[:2], n, n):
            raise InputError(f"axial kernel {a}: expected {(*v.shape[:2], n, n)}, got {tuple(k.shape)}")


def axial_apply_reference(v: Tensor, kernels: list[Tensor]) -> Tensor:
    check_shapes(v, kernels)
    d = len(kernels)
    axes = string.ascii_lowercase[:d]
    out = v
    for a in range(d - 1, -1, -1):  # last axis first, as FactFormer's chain
        src = axes[:a] + "z" + axes[a + 1 :]
        out = torch.einsum(f"BH{axes[a]}z,BH{src}C->BH{axes}C", kernels[a], out)  # (B, H, *space, C)
    return out
