"""The graph baseline for steady fields: a mesh-issue backbone on the query points' k-NN graph.

Every query point is a node with its signed distance and the global parameters as input;
edges join each point to its k nearest neighbours of the same sample (both directions) with
the relative position and length as edge features, and the backbone (MeshGraphNet or the
graph transformer) maps them to the fields. Same calling convention as enf2enf.

Shapes: points (B, S, d), sdf (B, S), params (B, P), queries (B, Q, d), query_sdf (B, Q)
-> (B, Q, out_channels). The geometry points are not used: the graph sees the geometry
through the SDF of its own nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from surrogate.errors import InputError
from surrogate.operators.enf2enf import check_steady_inputs
from surrogate.operators.graph_transformer import GraphTransformer
from surrogate.operators.meshgraphnet import MeshGraphNet

BACKBONES = ("meshgraphnet", "graph_transformer")


@dataclass
class SteadyGraphConfig:
    """`n_dims`, `out_channels`, `n_params` come from the data."""

    n_dims: int = 2
    out_channels: int = 3
    n_params: int = 0
    backbone: str = "meshgraphnet"
    k_neighbors: int = 8
    width: int = 64
    depth: int = 6


def knn_edges(x: Tensor, k: int, chunk: int = 512) -> Tensor:
    """Edges (2, E) from each point of x (N, d) to its k nearest others and back, each once."""
    k = min(k, x.shape[0] - 1)
    rows = [torch.cdist(x[s : s + chunk], x).topk(k + 1, largest=False).indices[:, 1:] for s in range(0, len(x), chunk)]
    nbr = torch.cat(rows)  # (N, k)
    src = torch.arange(len(x), device=x.device).repeat_interleave(k)
    e = torch.stack([src, nbr.flatten()])
    e = torch.cat([e, e.flip(0)], 1)
    return torch.unique(e, dim=1)


class SteadyGraph(nn.Module):
    def __init__(
        self,
        n_dims: int = 2,
        out_channels: int = 3,
        n_params: int = 0,
        backbone: str = "meshgraphnet",
        k_neighbors: int = 8,
        width: int = 64,
        depth: int = 6,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise InputError(f"steady_graph.backbone {backbone!r}: expected one of {BACKBONES}")
        if k_neighbors < 1:
            raise InputError(f"steady_graph.k_neighbors must be >= 1, got {k_neighbors}")
        self.k = k_neighbors
        if backbone == "meshgraphnet":
            self.net: nn.Module = MeshGraphNet(1 + n_params, out_channels, n_dims + 1, width, depth)
        else:
            # its node inputs hold no coordinates: they enter through the rotary encoding
            self.net = GraphTransformer(1 + n_params, out_channels, dim=width, n_blocks=depth, pos_encoding="rope")

    def forward(self, points: Tensor, sdf: Tensor, params: Tensor, queries: Tensor, query_sdf: Tensor) -> Tensor:
        check_steady_inputs("steady_graph", points, sdf, queries, query_sdf)
        b, q, _ = queries.shape
        pos = queries.flatten(0, 1)  # (B Q, d)
        edges = torch.cat([knn_edges(queries[i], self.k) + i * q for i in range(b)], 1)
        rel = pos[edges[1]] - pos[edges[0]]
        x = torch.cat([query_sdf[..., None], params[:, None].expand(-1, q, -1)], -1).flatten(0, 1)  # (B Q, 1 + P)
        graph = Data(
            x=x,
            pos=pos,
            edge_index=edges,
            edge_attr=torch.cat([rel, rel.norm(dim=-1, keepdim=True)], -1),
            batch=torch.arange(b, device=pos.device).repeat_interleave(q),
        )
        return self.net(graph).unflatten(0, (b, q))
