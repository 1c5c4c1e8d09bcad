"""Fourier neural operator on neuraloperator's layers, with parameter channels and a mask.

The spectral layers are `surrogate.kernels.spectral_conv.SpectralConv`: neuraloperator's,
with `spectral_backend` "auto" (the Triton truncated-DFT kernel on CUDA, neuraloperator's
FFT path elsewhere), "triton" or "reference".

Physical parameters enter as constant channels and the mask as one more channel (as
CFDBench feeds them); the output is multiplied by the mask, so that solid and wall
cells get no prediction of their own.

`domain_padding` (neuraloperator's `DomainPadding`, a fraction of each axis, one value for
all axes or one per axis; 0 for a periodic axis) zero-pads the lifted field on both sides
before the Fourier layers and crops it after, so that the spectral convolutions stop
treating a walled domain as periodic (CFDBench's walls, the channel's y axis).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from neuralop.layers.channel_mlp import ChannelMLP
from neuralop.layers.fno_block import FNOBlocks
from neuralop.layers.padding import DomainPadding
from torch import Tensor, nn

from surrogate.errors import InputError
from surrogate.kernels.backend import BACKENDS
from surrogate.kernels.spectral_conv import SpectralConv


@dataclass
class FNOConfig:
    """FNO hyper-parameters. `in_channels`, `out_channels`, `n_params` come from the data."""

    in_channels: int = 1
    out_channels: int = 1
    n_params: int = 0
    n_modes: tuple[int, ...] = (16, 16)
    hidden_channels: int = 32
    n_layers: int = 4
    lifting_channel_ratio: float = 2.0
    projection_channel_ratio: float = 2.0
    use_mask: bool = True
    positional_embedding: bool = True
    spectral_backend: str = "auto"
    domain_padding: tuple[float, ...] = ()


class FNO(nn.Module):
    """Grid operator (B, C_in, *space) + params (B, P) [+ mask (B, 1, *space)] -> (B, C_out, *space)."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        n_params: int = 0,
        n_modes: tuple[int, ...] = (16, 16),
        hidden_channels: int = 32,
        n_layers: int = 4,
        lifting_channel_ratio: float = 2.0,
        projection_channel_ratio: float = 2.0,
        use_mask: bool = True,
        positional_embedding: bool = True,
        spectral_backend: str = "auto",
        domain_padding: tuple[float, ...] = (),
    ) -> None:
        super().__init__()
        if spectral_backend not in BACKENDS:
            raise InputError(f"FNO spectral_backend {spectral_backend!r}: expected one of {BACKENDS}")
        self.n_dim = len(n_modes)
        pads = [float(p) for p in domain_padding] * (self.n_dim if len(domain_padding) == 1 else 1)
        if len(pads) not in (0, self.n_dim) or any(not 0 <= p <= 1 for p in pads):
            raise InputError(f"FNO domain_padding {list(domain_padding)}: expected one fraction in [0, 1] or one per axis ({self.n_dim})")
        self.padding = DomainPadding(pads) if any(p > 0 for p in pads) else None
        self.in_channels, self.n_params = in_channels, n_params
        self.use_mask, self.positional_embedding = use_mask, positional_embedding
        lift_in = in_channels + n_params + int(use_mask) + (self.n_dim if positional_embedding else 0)
        self.lifting = ChannelMLP(
            in_channels=lift_in,
            out_channels=hidden_channels,
            hidden_channels=int(lifting_channel_ratio * hidden_channels),
            n_layers=2,
            n_dim=self.n_dim,
        )
        self.fno_blocks = FNOBlocks(
            in_channels=hidden_channels,
            out_channels=hidden_channels,
            n_modes=tuple(n_modes),
            n_layers=n_layers,
            conv_module=SpectralConv,
        )
        for conv in self.fno_blocks.convs:
            conv.backend = spectral_backend
        self.projection = ChannelMLP(
            in_channels=hidden_channels,
            out_channels=out_channels,
            hidden_channels=int(projection_channel_ratio * hidden_channels),
            n_layers=2,
            n_dim=self.n_dim,
        )

    def _grid(self, x: Tensor) -> Tensor:
        """Coordinates in [0, 1) of every point, (B, n_dim, *space)."""
        space = x.shape[2:]
        axes = [torch.arange(n, device=x.device, dtype=x.dtype) / n for n in space]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (n_dim, *space)
        return grid.expand(x.shape[0], *grid.shape)

    def forward(self, x: Tensor, params: Tensor, mask: Tensor | None = None) -> Tensor:
        b, c, *space = x.shape
        if c != self.in_channels or len(space) != self.n_dim:
            raise InputError(f"FNO: expected (B, {self.in_channels}, {self.n_dim} space dims), got {tuple(x.shape)}")
        if params.shape != (b, self.n_params):
            raise InputError(f"FNO: expected params ({b}, {self.n_params}), got {tuple(params.shape)}")
        parts = [x, params.view(b, self.n_params, *[1] * self.n_dim).expand(b, self.n_params, *space)]
        if self.use_mask:
            parts.append(torch.ones_like(x[:, :1]) if mask is None else mask.to(x.dtype))
        if self.positional_embedding:
            parts.append(self._grid(x))
        h = self.lifting(torch.cat(parts, dim=1))  # (B, hidden, *space)
        if self.padding is not None:
            h = self.padding.pad(h)  # (B, hidden, *padded space)
        for i in range(self.fno_blocks.n_layers):
            h = self.fno_blocks(h, i)
        if self.padding is not None:
            h = self.padding.unpad(h)  # (B, hidden, *space)
        out = self.projection(h)  # (B, C_out, *space)
        if self.use_mask and mask is not None:
            out = out * mask
        return out
