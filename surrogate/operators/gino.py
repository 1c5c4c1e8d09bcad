"""GINO (neuraloperator's geometry-informed neural operator) in the steady calling convention.

A graph neural operator carries the geometry points' features (SDF and global parameters)
onto a regular latent grid over the domain's box, an FNO works there, and a second GNO
brings the result to the query points. Coordinates are mapped to the unit box first
(`box` = [x_lo, y_lo, x_hi, y_hi] from the data), where the GNO radii are measured.
Geometries differ between samples, so each sample runs on its own (neuraloperator's GINO
shares one geometry across a batch).

Shapes: points (B, S, 2), sdf (B, S), params (B, P), queries (B, Q, 2), query_sdf (B, Q)
-> (B, Q, out_channels). The query SDF is not used: GINO's output GNO sees only positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from surrogate.errors import InputError
from surrogate.operators.enf2enf import check_steady_inputs


@dataclass
class GINOConfig:
    """`n_dims`, `out_channels`, `n_params`, `box` come from the data."""

    n_dims: int = 2
    out_channels: int = 3
    n_params: int = 0
    box: list[float] = field(default_factory=lambda: [0.0, 0.0, 1.0, 1.0])
    latent_shape: list[int] = field(default_factory=lambda: [32, 16])
    radius: float = 0.06
    modes: list[int] = field(default_factory=lambda: [12, 8])
    hidden: int = 32
    n_layers: int = 4


class GINO(nn.Module):
    def __init__(
        self,
        n_dims: int = 2,
        out_channels: int = 3,
        n_params: int = 0,
        box: tuple[float, ...] = (0.0, 0.0, 1.0, 1.0),
        latent_shape: tuple[int, ...] = (32, 16),
        radius: float = 0.06,
        modes: tuple[int, ...] = (12, 8),
        hidden: int = 32,
        n_layers: int = 4,
    ) -> None:
        super().__init__()
        from neuralop.models import GINO as NeuralopGINO

        if n_dims != 2 or len(box) != 4 or len(latent_shape) != 2 or len(modes) != 2:
            raise InputError(
                f"gino: 2D only, with box [x_lo, y_lo, x_hi, y_hi], 2 latent sizes and 2 mode counts; got "
                f"n_dims {n_dims}, box {box}, latent_shape {latent_shape}, modes {modes}"
            )
        lo, hi = torch.tensor(box[:2], dtype=torch.float32), torch.tensor(box[2:], dtype=torch.float32)
        if not bool((hi > lo).all()) or radius <= 0:
            raise InputError(f"gino: need box x_hi > x_lo, y_hi > y_lo and radius > 0; got box {box}, radius {radius}")
        self.register_buffer("lo", lo)
        self.register_buffer("span", hi - lo)
        axes = [torch.linspace(0, 1, n) for n in latent_shape]
        self.register_buffer("latent", torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)[None])  # (1, H, W, 2)
        self.net = NeuralopGINO(
            in_channels=1 + n_params,
            out_channels=out_channels,
            gno_coord_dim=2,
            in_gno_radius=radius,
            out_gno_radius=radius,
            fno_n_modes=tuple(modes),
            fno_hidden_channels=hidden,
            fno_n_layers=n_layers,
            fno_in_channels=1 + n_params,
            gno_use_open3d=False,
            gno_use_torch_scatter=False,
            in_gno_channel_mlp_hidden_layers=[hidden, hidden],
            out_gno_channel_mlp_hidden_layers=[2 * hidden, hidden],
            gno_embed_channels=16,
        )

    def state_dict(self, *args, **kwargs):  # type: ignore[override]
        """Tensors only: neuraloperator adds its constructor arguments (functions included) under
        `_metadata`, which a `weights_only` checkpoint load refuses; the config rebuilds them."""
        out = super().state_dict(*args, **kwargs)
        out.pop("_metadata", None)
        return out

    def forward(self, points: Tensor, sdf: Tensor, params: Tensor, queries: Tensor, query_sdf: Tensor) -> Tensor:
        check_steady_inputs("gino", points, sdf, queries, query_sdf)
        unit = lambda x: (x - self.lo) / self.span  # noqa: E731
        x = torch.cat([sdf[..., None], params[:, None].expand(-1, points.shape[1], -1)], -1)  # (B, S, 1 + P)
        outs = [
            self.net(
                input_geom=unit(points[i : i + 1]), latent_queries=self.latent, output_queries=unit(queries[i : i + 1]), x=x[i : i + 1]
            )
            for i in range(points.shape[0])
        ]
        return torch.cat(outs)
