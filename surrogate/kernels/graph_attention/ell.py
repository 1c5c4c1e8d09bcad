"""Neighbour lists in padded ELL form, for the graph-attention kernels.

`neighbors[i, :]` lists the sources j of the edges j -> i (node i attends to them), padded
with -1 to the largest in-degree; `reverse[j, :]` lists the targets i of j's out-edges, so
that the backward can accumulate dK, dV per node without atomics. Memory O(N * max degree).

Shapes: edge_index (2, E) as torch_geometric (row 0 source, row 1 target); neighbors (N, L_in);
reverse (N, L_out).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from surrogate.errors import InputError


def _ell(rows: Tensor, cols: Tensor, n_nodes: int) -> Tensor:
    """cols grouped by rows, padded with -1: (N, max count)."""
    order = torch.argsort(rows, stable=True)
    rows, cols = rows[order], cols[order]
    counts = torch.bincount(rows, minlength=n_nodes)
    width = int(counts.max()) if len(rows) else 0
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(rows), device=rows.device) - starts[rows]
    out = torch.full((n_nodes, max(width, 1)), -1, dtype=torch.int32, device=rows.device)
    out[rows, slot] = cols.to(torch.int32)
    return out


@dataclass(frozen=True)
class EllGraph:
    neighbors: Tensor
    reverse: Tensor

    @property
    def n_nodes(self) -> int:
        return self.neighbors.shape[0]

    def to(self, device: torch.device | str) -> EllGraph:
        return EllGraph(self.neighbors.to(device), self.reverse.to(device))

    @staticmethod
    def from_edge_index(edge_index: Tensor, n_nodes: int) -> EllGraph:
        if edge_index.ndim != 2 or edge_index.shape[0] != 2:
            raise InputError(f"edge_index: expected (2, E), got {tuple(edge_index.shape)}")
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n_nodes):
            raise InputError(f"edge_index: node ids must lie in [0, {n_nodes}), got [{int(edge_index.min())}, {int(edge_index.max())}]")
        src, dst = edge_index.long()
        return EllGraph(_ell(dst, src, n_nodes), _ell(src, dst, n_nodes))
