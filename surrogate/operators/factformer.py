"""Implicit factorized transformers for turbulent channel flow (IFactFormer, Yang et al. 2024).

Factorized attention (FactFormer, Li et al. 2023): for each space axis a, the projected field
is averaged over the other axes, giving an axis sequence (B, n_a, D); queries and keys of it,
with rotary position encoding along the axis, form a kernel K_a = q_a k_a^T / n_a per head.
The values are then mixed by the kernels:

    variant "m" (IFactFormer-m, parallel): each K_a acts along its own axis only, the d results
                are concatenated and projected: out = W [K_1 x_1 v, ..., K_d x_d v];
    variant "o" (IFactFormer-o, chained):  the kernels act one after another along all axes,
                out = W (K_1 x_1 K_2 x_2 ... K_d x_d v) (the `axial_apply` kernel).

One weight-shared block (attention and MLP, pre-norm) is iterated `depth` times as an
implicit update u <- u + block(u) / depth, so depth costs no parameters.

Shapes: x (B, C_in, *space) + params (B, P) [+ mask (B, 1, *space)] -> (B, C_out, *space),
the grid operators' convention; space has n_dims axes (3 for a channel: x, y, z).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from surrogate.errors import InputError
from surrogate.kernels.backend import BACKENDS
from surrogate.kernels.factorized_attention import axial_apply
from surrogate.operators.graph_transformer import rotary
from surrogate.operators.mlp import mlp

VARIANTS = ("m", "o")


@dataclass
class FactFormerConfig:
    """`in_channels`, `out_channels`, `n_params` come from the data; `variant` "m" or "o"."""

    in_channels: int = 4
    out_channels: int = 4
    n_params: int = 0
    n_dims: int = 3
    dim: int = 64
    heads: int = 4
    depth: int = 4
    mlp_ratio: float = 2.0
    variant: str = "m"
    backend: str = "auto"


def apply_along(v: Tensor, k: Tensor, axis: int) -> Tensor:
    """K (B, H, n, n) applied along space axis `axis` of v (B, H, *space, C) -> same shape."""
    d = v.ndim - 3
    axes = string.ascii_lowercase[:d]
    src = axes[:axis] + "z" + axes[axis + 1 :]
    return torch.einsum(f"BH{axes[axis]}z,BH{src}C->BH{axes}C", k, v)


class FactorizedAttention(nn.Module):
    def __init__(self, n_dims: int, dim: int, heads: int, variant: str, backend: str) -> None:
        super().__init__()
        self.n_dims, self.heads, self.variant, self.backend = n_dims, heads, variant, backend
        self.qk = nn.ModuleList(nn.Linear(dim, 2 * dim) for _ in range(n_dims))
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim * (n_dims if variant == "m" else 1), dim)

    def kernel(self, h: Tensor, axis: int) -> Tensor:
        """K_a (B, H, n_a, n_a) from the field h (B, *space, D) pooled over the other axes."""
        others = [1 + i for i in range(self.n_dims) if i != axis]
        pooled = h.mean(dim=others)  # (B, n_a, D)
        b, n, _ = pooled.shape
        q, k = (t.unflatten(-1, (self.heads, -1)) for t in self.qk[axis](pooled).chunk(2, dim=-1))  # (B, n_a, H, Dh)
        dh = q.shape[-1]
        freqs = 1.0 / (10000 ** (torch.arange(0, dh // 2, device=h.device, dtype=h.dtype) * 2 / dh))
        angles = (torch.arange(n, device=h.device, dtype=h.dtype)[:, None] * freqs).repeat(b, 1)  # (B n_a, Dh/2)
        q, k = (rotary(t.flatten(0, 1), angles).unflatten(0, (b, n)).transpose(1, 2) for t in (q, k))  # (B, H, n_a, Dh)
        return q @ k.transpose(-1, -2) / n

    def forward(self, h: Tensor) -> Tensor:
        """h (B, *space, D) -> (B, *space, D)."""
        kernels = [self.kernel(h, a) for a in range(self.n_dims)]
        v = self.v(h).unflatten(-1, (self.heads, -1)).movedim(-2, 1)  # (B, H, *space, Dh)
        if self.variant == "o":
            mixed = axial_apply(v, kernels, self.backend).movedim(1, -2).flatten(-2)  # (B, *space, D)
        else:
            mixed = torch.cat([apply_along(v, k, a).movedim(1, -2).flatten(-2) for a, k in enumerate(kernels)], dim=-1)
        return self.out(mixed)


class FactFormer(nn.Module):
    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int = 4,
        n_params: int = 0,
        n_dims: int = 3,
        dim: int = 64,
        heads: int = 4,
        depth: int = 4,
        mlp_ratio: float = 2.0,
        variant: str = "m",
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise InputError(f"factformer.variant {variant!r}: expected 'm' (parallel, IFactFormer-m) or 'o' (chained)")
        if backend not in BACKENDS:
            raise InputError(f"factformer.backend {backend!r}: expected one of {BACKENDS}")
        if dim % heads or (dim // heads) % 2 or depth < 1 or n_dims < 1:
            raise InputError(
                f"factformer: need dim divisible by heads with an even head size, depth >= 1, n_dims >= 1; "
                f"got dim {dim}, heads {heads}, depth {depth}, n_dims {n_dims}"
            )
        self.in_channels, self.n_params, self.n_dims, self.depth = in_channels, n_params, n_dims, depth
        self.lift = mlp([in_channels + n_params + n_dims, dim, dim], layer_norm=False)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = FactorizedAttention(n_dims, dim, heads, variant, backend)
        self.mlp = mlp([dim, int(mlp_ratio * dim), dim], layer_norm=False)
        self.project = nn.Sequential(nn.LayerNorm(dim), mlp([dim, dim, out_channels], layer_norm=False))

    def block(self, u: Tensor) -> Tensor:
        """The shared block's increment, (B, *space, D)."""
        a = self.attn(self.norm1(u))
        return a + self.mlp(self.norm2(u + a))

    def forward(self, x: Tensor, params: Tensor, mask: Tensor | None = None) -> Tensor:
        b, c, *space = x.shape
        if c != self.in_channels or len(space) != self.n_dims:
            raise InputError(f"factformer: expected (B, {self.in_channels}, {self.n_dims} space dims), got {tuple(x.shape)}")
        if params.shape != (b, self.n_params):
            raise InputError(f"factformer: expected params ({b}, {self.n_params}), got {tuple(params.shape)}")
        axes = [torch.arange(n, device=x.device, dtype=x.dtype) / n for n in space]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).expand(b, *space, self.n_dims)  # (B, *space, d)
        feats = torch.cat([x.movedim(1, -1), params.view(b, *[1] * len(space), self.n_params).expand(b, *space, self.n_params), grid], -1)
        u = self.lift(feats)  # (B, *space, D)
        for _ in range(self.depth):
            u = u + self.block(u) / self.depth
        out = self.project(u).movedim(-1, 1)  # (B, C_out, *space)
        return out * mask if mask is not None else out
