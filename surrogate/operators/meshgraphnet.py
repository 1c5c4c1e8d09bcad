"""MeshGraphNet (Pfaff et al. 2021): encode nodes and edges, message passing with edge and
node MLPs and residuals, decode; the mesh-surrogate baseline.

As published: every MLP has two hidden layers of the latent width with ReLU and a linear
output, closed by a LayerNorm except the decoder's; the edge update sees (edge, receiver,
sender) latents, the node update the node latent and the sum of its updated edge latents,
both residual.

Shapes: graph.x (N, in_channels), graph.edge_attr (E, edge_channels), graph.edge_index (2, E)
-> (N, out_channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from surrogate.errors import InputError
from surrogate.operators.mlp import mlp


@dataclass
class MeshGraphNetConfig:
    """`in_channels`, `out_channels`, `edge_channels` come from the data."""

    in_channels: int = 6
    out_channels: int = 2
    edge_channels: int = 3
    latent: int = 128
    n_steps: int = 15


class GraphNetBlock(MessagePassing):
    """e_ij <- e_ij + MLP(e_ij, h_i, h_j); h_i <- h_i + MLP(h_i, sum_j e_ij)."""

    def __init__(self, latent: int) -> None:
        super().__init__(aggr="sum")
        self.edge_mlp = mlp([3 * latent, latent, latent, latent], layer_norm=True)
        self.node_mlp = mlp([2 * latent, latent, latent, latent], layer_norm=True)

    def forward(self, h: Tensor, e: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
        src, dst = edge_index
        e = e + self.edge_mlp(torch.cat([e, h.index_select(0, dst), h.index_select(0, src)], dim=-1))  # (E, latent)
        agg = self.propagate(edge_index, e=e, size=(h.shape[0], h.shape[0]))  # (N, latent)
        return h + self.node_mlp(torch.cat([h, agg], dim=-1)), e

    def message(self, e: Tensor) -> Tensor:  # type: ignore[override]
        return e


class MeshGraphNet(nn.Module):
    def __init__(self, in_channels: int = 6, out_channels: int = 2, edge_channels: int = 3, latent: int = 128, n_steps: int = 15) -> None:
        super().__init__()
        if latent < 1 or n_steps < 1:
            raise InputError(f"meshgraphnet: need latent >= 1 and n_steps >= 1, got {latent}, {n_steps}")
        self.node_encoder = mlp([in_channels, latent, latent, latent], layer_norm=True)
        self.edge_encoder = mlp([edge_channels, latent, latent, latent], layer_norm=True)
        self.blocks = nn.ModuleList(GraphNetBlock(latent) for _ in range(n_steps))
        self.decoder = mlp([latent, latent, latent, out_channels], layer_norm=False)

    def forward(self, graph) -> Tensor:  # graph: torch_geometric Batch or Data
        h, e = self.node_encoder(graph.x), self.edge_encoder(graph.edge_attr)
        for block in self.blocks:
            h, e = block(h, e, graph.edge_index)
        return self.decoder(h)
