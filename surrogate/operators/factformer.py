"""Implicit factorized transformers for turbulent channel flow (IFactFormer-m and -o, Yang et al.
2024), the architecture of the authors' public code (`huiyu-2002/IFactFormer-m`, `libs/`), with
their names.

    lift      per-channel pointwise conv (C_in -> dim/2, groups C_in), GELU, then a conv over the
              `in_time_window` input steps (dim/2 -> dim): the time window collapses to one field;
    encoder   `depth` distinct blocks; before each, a Gaussian Fourier feature encoding of the
              physical coordinates (fixed random matrix, scale 8) and a Linear are added; each
              block is iterated `n_layer` times as u <- u + block(u) / n_layer;
    head      pointwise conv dim -> dim/2 (no bias), GELU, pointwise conv dim/2 -> C_out.

One block (FABlock): LayerNorm; values v = W_v u (heads x dim_head); for each axis a, a pooling
reducer (Linear, mean over the other axes, pre-normed gated-GELU MLP) gives an axis sequence
(B, n_a, dim), and a low-rank kernel K_a = q_a k_a^T * scaling per head from separate q, k of
width dim_head x kernel_multiplier, rotated by the axis' physical coordinates (rotary encoding
with minimum frequency 1/64), no softmax, Xavier init with gain 0.02. Then

    variant "m" (IFactFormer-m, parallel): each K_a acts along its own axis only, the results are
                concatenated per head: [K_1 x_1 v, ..., K_d x_d v];
    variant "o" (IFactFormer-o, chained):  K_1 x_1 K_2 x_2 ... K_d x_d v (`axial_apply`);

followed by InstanceNorm over space, Linear (no bias), GELU, Linear (no bias).

The defaults are the authors' published configuration (`configs/IFactFormer.yml`: 3 velocity
channels, one input step, dim 96, 5 heads of 96, kernel multiplier 3, one block iterated 10
times): 1,163,187 trainable parameters, as their code counts. Coordinates follow their
`get_pos_lst`: axis a at linspace(0, lengths[a], n_a), physical units, so the rotary angles and
Fourier features do not change with resolution. Extras that the authors do not have default
off: `condition_on_params` (a Linear of the parameters added to the lifted field) and
`use_mask` (output times the mask).

Shapes: x (B, in_channels, *space) with in_channels = in_time_window * C_out + S (the input
steps' channels, step-major, then S static fields, which are repeated over the window) +
params (B, P) [+ mask (B, 1, *space)] -> (B, C_out, *space); space has n_dims axes.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from surrogate.errors import InputError
from surrogate.kernels.backend import BACKENDS
from surrogate.kernels.factorized_attention import axial_apply

VARIANTS = ("m", "o")


@dataclass
class FactFormerConfig:
    """The authors' names: `depth` distinct blocks, each iterated `n_layer` times.
    `in_channels`, `out_channels`, `n_params`, `in_time_window` and `lengths` come from the data."""

    in_channels: int = 3
    out_channels: int = 3
    n_params: int = 0
    in_time_window: int = 1
    lengths: tuple[float, ...] = (4 * math.pi, 2.0, 4 * math.pi / 3)
    dim: int = 96
    dim_head: int = 96
    heads: int = 5
    depth: int = 1
    n_layer: int = 10
    kernel_multiplier: int = 3
    variant: str = "m"
    fourier_scale: float = 8.0
    rope_min_freq: float = 1 / 64
    condition_on_params: bool = False
    use_mask: bool = False
    backend: str = "auto"


def apply_along(v: Tensor, k: Tensor, axis: int) -> Tensor:
    """K (B, H, n, n) applied along space axis `axis` of v (B, H, *space, C) -> same shape."""
    d = v.ndim - 3
    axes = string.ascii_lowercase[:d]
    src = axes[:axis] + "z" + axes[axis + 1 :]
    return torch.einsum(f"BH{axes[axis]}z,BH{src}C->BH{axes}C", k, v)


def rotate(x: Tensor, angles: Tensor) -> Tensor:
    """Rotary encoding, halves paired: x (..., n, D) rotated by angles (n, D / 2)."""
    freqs = torch.cat([angles, angles], dim=-1)  # (n, D)
    x1, x2 = x.chunk(2, dim=-1)
    return x * freqs.cos() + torch.cat([-x2, x1], dim=-1) * freqs.sin()


class PoolingReducer(nn.Module):
    """(B, n_a, *others, dim) -> (B, n_a, out): Linear, mean over the other axes, pre-normed gated MLP."""

    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.to_in = nn.Linear(dim, dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.hidden = nn.Linear(dim, 2 * dim)  # GELU(first half) * second half
        self.out = nn.Linear(dim, out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.to_in(x)
        x = x.mean(dim=tuple(range(2, x.ndim - 1))) if x.ndim > 3 else x
        a, b = self.hidden(self.norm(x)).chunk(2, dim=-1)
        return self.out(F.gelu(a) * b)


class LowRankKernel(nn.Module):
    """K (B, H, n, n) = rope(q) rope(k)^T * scaling from an axis sequence (B, n, dim) and its coordinates (n,)."""

    def __init__(self, dim: int, width: int, heads: int, min_freq: float, scaling: float) -> None:
        super().__init__()
        self.heads, self.scaling, self.min_freq = heads, scaling, min_freq
        self.to_q = nn.Linear(dim, width * heads, bias=False)
        self.to_k = nn.Linear(dim, width * heads, bias=False)
        for lin in (self.to_q, self.to_k):
            nn.init.xavier_uniform_(lin.weight, gain=0.02)
        self.register_buffer("inv_freq", 1.0 / 10000 ** (torch.arange(0, width, 2).float() / width), persistent=False)

    def forward(self, u: Tensor, pos: Tensor) -> Tensor:
        q, k = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (self.to_q(u), self.to_k(u)))  # (B, H, n, w)
        angles = (pos.to(u.dtype) / self.min_freq)[:, None] * self.inv_freq.to(u.dtype)  # (n, w / 2)
        return rotate(q, angles) @ rotate(k, angles).transpose(-1, -2) * self.scaling


class FABlock(nn.Module):
    """One factorized attention block, (B, *space, dim) -> (B, *space, dim)."""

    def __init__(
        self, n_dims: int, dim: int, dim_head: int, heads: int, kernel_multiplier: int, variant: str, min_freq: float, backend: str
    ) -> None:
        super().__init__()
        self.heads, self.variant, self.backend = heads, variant, backend
        width = dim_head * kernel_multiplier
        scaling = 1 / math.sqrt(width) if kernel_multiplier > 4 else 1.0  # the authors' rule (no softmax)
        self.in_norm = nn.LayerNorm(dim)
        self.to_v = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_in = nn.Linear(dim, dim, bias=False)
        self.reducers = nn.ModuleList(PoolingReducer(dim, dim) for _ in range(n_dims))
        self.kernels = nn.ModuleList(LowRankKernel(dim, width, heads, min_freq, scaling) for _ in range(n_dims))
        mixed = heads * dim_head * (n_dims if variant == "m" else 1)
        self.to_out = nn.Sequential(nn.Linear(mixed, dim, bias=False), nn.GELU(), nn.Linear(dim, dim, bias=False))

    def forward(self, u: Tensor, pos: list[Tensor]) -> Tensor:
        u = self.in_norm(u)
        v = self.to_v(u).unflatten(-1, (self.heads, -1)).movedim(-2, 1)  # (B, H, *space, Dh)
        u = self.to_in(u)
        kernels = [kern(red(u.movedim(1 + a, 1)), pos[a]) for a, (red, kern) in enumerate(zip(self.reducers, self.kernels))]
        if self.variant == "o":
            mixed = axial_apply(v, kernels, self.backend)  # (B, H, *space, Dh)
        else:
            mixed = torch.cat([apply_along(v, k, a) for a, k in enumerate(kernels)], dim=-1)  # (B, H, *space, d Dh)
        mixed = mixed.movedim(1, -2).flatten(-2)  # (B, *space, H d Dh), head-major as the authors' (h c)
        b, *space, c = mixed.shape
        normed = F.instance_norm(mixed.reshape(b, -1, c).transpose(1, 2)).transpose(1, 2).reshape(b, *space, c)
        return self.to_out(normed)


class FourierPositions(nn.Module):
    """Gaussian Fourier features of the coordinates (fixed B ~ N(0, scale^2)), then a Linear: (N, d) -> (N, dim)."""

    def __init__(self, n_dims: int, dim: int, scale: float) -> None:
        super().__init__()
        self.register_buffer("B", torch.randn(n_dims, dim // 2) * scale)
        self.linear = nn.Linear(dim, dim)

    def forward(self, pos: Tensor) -> Tensor:
        x = 2 * math.pi * pos @ self.B
        return self.linear(torch.cat([x.sin(), x.cos()], dim=-1))


class FactFormer(nn.Module):
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        n_params: int = 0,
        in_time_window: int = 1,
        lengths: tuple[float, ...] = FactFormerConfig.lengths,
        dim: int = 96,
        dim_head: int = 96,
        heads: int = 5,
        depth: int = 1,
        n_layer: int = 10,
        kernel_multiplier: int = 3,
        variant: str = "m",
        fourier_scale: float = 8.0,
        rope_min_freq: float = 1 / 64,
        condition_on_params: bool = False,
        use_mask: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise InputError(f"factformer.variant {variant!r}: expected 'm' (parallel, IFactFormer-m) or 'o' (chained)")
        if backend not in BACKENDS:
            raise InputError(f"factformer.backend {backend!r}: expected one of {BACKENDS}")
        n_static = in_channels - in_time_window * out_channels
        lifted = out_channels + n_static  # channels per input step, static fields repeated
        if (
            in_time_window < 1
            or n_static < 0
            or depth < 1
            or n_layer < 1
            or dim % 2
            or (dim // 2) % lifted
            or (dim_head * kernel_multiplier) % 2
        ):
            raise InputError(
                "factformer: need in_time_window >= 1, in_channels >= in_time_window * out_channels, depth and n_layer >= 1, "
                f"dim / 2 divisible by the {lifted} channels per input step, an even dim_head * kernel_multiplier; got in_channels "
                f"{in_channels}, out_channels {out_channels}, in_time_window {in_time_window}, dim {dim}, depth {depth}, "
                f"n_layer {n_layer}, dim_head {dim_head}, kernel_multiplier {kernel_multiplier}"
            )
        n_dims = len(lengths)
        if n_dims < 1 or min(lengths) <= 0:
            raise InputError(f"factformer.lengths {tuple(lengths)}: expected one positive domain length per space axis")
        self.in_channels, self.out_channels, self.n_params, self.n_dims = in_channels, out_channels, n_params, n_dims
        self.in_time_window, self.n_layer, self.lengths, self.use_mask = in_time_window, n_layer, tuple(lengths), use_mask
        self.to_in = nn.Sequential(
            nn.Conv2d(lifted, dim // 2, kernel_size=1, groups=lifted),
            nn.GELU(),
            nn.Conv2d(dim // 2, dim, kernel_size=(in_time_window, 1), bias=False),
        )
        self.param_lift = nn.Linear(n_params, dim) if condition_on_params and n_params else None
        self.positions = nn.ModuleList(FourierPositions(n_dims, dim, fourier_scale) for _ in range(depth))
        self.blocks = nn.ModuleList(
            FABlock(n_dims, dim, dim_head, heads, kernel_multiplier, variant, rope_min_freq, backend) for _ in range(depth)
        )
        self.to_out = nn.Sequential(nn.Conv1d(dim, dim // 2, 1, bias=False), nn.GELU(), nn.Conv1d(dim // 2, out_channels, 1))

    def coordinates(self, space: list[int], like: Tensor) -> list[Tensor]:
        """Axis a at linspace(0, lengths[a], n_a), as the authors' get_pos_lst."""
        return [torch.linspace(0, length, n, device=like.device, dtype=like.dtype) for length, n in zip(self.lengths, space)]

    def forward(self, x: Tensor, params: Tensor, mask: Tensor | None = None) -> Tensor:
        b, c, *space = x.shape
        if c != self.in_channels or len(space) != self.n_dims:
            raise InputError(f"factformer: expected (B, {self.in_channels}, {self.n_dims} space dims), got {tuple(x.shape)}")
        if params.shape != (b, self.n_params):
            raise InputError(f"factformer: expected params ({b}, {self.n_params}), got {tuple(params.shape)}")
        k, cout = self.in_time_window, self.out_channels
        steps = x[:, : k * cout].unflatten(1, (k, cout)).transpose(1, 2)  # (B, C, k, *space)
        static = x[:, k * cout :, None].expand(b, c - k * cout, k, *space)  # (B, S, k, *space)
        u = self.to_in(torch.cat([steps, static], dim=1).flatten(3))  # (B, dim, 1, N)
        u = u[:, :, 0].transpose(1, 2).unflatten(1, space)  # (B, *space, dim)
        if self.param_lift is not None:
            u = u + self.param_lift(params).view(b, *[1] * len(space), -1)
        pos = self.coordinates(space, x)
        grid = torch.stack(torch.meshgrid(*pos, indexing="ij"), dim=-1).reshape(-1, self.n_dims)  # (N, d)
        for encode, block in zip(self.positions, self.blocks):
            u = u + encode(grid).view(*space, -1)
            for _ in range(self.n_layer):
                u = u + block(u, pos) / self.n_layer
        out = self.to_out(u.flatten(1, -2).transpose(1, 2)).unflatten(2, space)  # (B, C_out, *space)
        return out * mask if self.use_mask and mask is not None else out
