"""A trained mesh surrogate: a graph operator between normalizers, predicting normalized increments.

Node inputs are the normalized fields and the one-hot node type; edge inputs are the
relative positions and lengths divided by the mean edge length of the training mesh. The
operator returns the normalized increment u(t + dt) - u(t). Wall and inflow nodes hold
prescribed (steady Dirichlet) values: the prediction keeps them, as MeshGraphNet resets
boundary nodes in a rollout.

Shapes:
    graph.u        (N, C) physical fields
    graph.node_type (N,)
    out            (N, C)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from surrogate.datasets.mesh_graph import INFLOW, INTERIOR, NODE_TYPES, OUTFLOW, WALL
from surrogate.operators.normalizer import Normalizer

PREDICTED = (INTERIOR, OUTFLOW)
PRESCRIBED = (WALL, INFLOW)


def predicted_nodes(node_type: Tensor) -> Tensor:
    """(N,) bool: the nodes whose values the model predicts (interior and outflow)."""
    return (node_type == PREDICTED[0]) | (node_type == PREDICTED[1])


class MeshSurrogate(nn.Module):
    def __init__(self, operator: nn.Module, normalizer: Normalizer, delta_mean: Tensor, delta_std: Tensor, edge_scale: float) -> None:
        super().__init__()
        self.operator, self.normalizer = operator, normalizer
        f32 = torch.float32
        self.register_buffer("delta_mean", torch.as_tensor(delta_mean, dtype=f32).clone())
        self.register_buffer("delta_std", torch.as_tensor(delta_std, dtype=f32).clone())
        self.register_buffer("edge_scale", torch.tensor(float(edge_scale), dtype=f32))

    def inputs(self, graph, u: Tensor):  # graph: torch_geometric Batch or Data
        """A shallow copy of `graph` with the operator's inputs x (N, C + 4) and scaled edge_attr."""
        out = graph.clone()
        out.x = torch.cat([self.normalizer.encode(u), F.one_hot(graph.node_type, len(NODE_TYPES)).to(u.dtype)], dim=-1)
        out.edge_attr = graph.edge_attr / self.edge_scale
        return out

    def forward_normalized(self, graph, u: Tensor) -> Tensor:
        """The normalized increment (N, C) predicted from physical fields u (N, C)."""
        return self.operator(self.inputs(graph, u))

    def forward(self, graph, u: Tensor) -> Tensor:
        """The next state (N, C) in physical units; prescribed nodes keep their values."""
        delta = self.forward_normalized(graph, u) * self.delta_std + self.delta_mean
        return torch.where(predicted_nodes(graph.node_type)[:, None], u + delta, u)
