"""Which nodes each node attends to in the graph transformer: the mesh adjacency without
self-loops (as Garnier et al.'s code; `self_loops` adds them), optionally widened to K hops,
plus random edges within each graph during training (their `new_edges_ratio`), plus dilated
sliding windows over a space-filling curve (Morton order; ours, described in their paper but
absent from their code): node pairs `dilation * j` apart (j = 1..window) along each graph's
Morton order attend to each other both ways, so far nodes exchange information in few blocks.

Shapes: edge_index (2, E) row 0 source, row 1 target; pos (N, d); batch (N,) graph of each node.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.utils import coalesce, scatter

MORTON_BITS = 10


def morton_order(pos: Tensor, batch: Tensor) -> Tensor:
    """Node ids sorted by graph, then by the Morton (Z-order) code of their position in the
    graph's bounding box."""
    lo = scatter(pos, batch, dim=0, reduce="min")[batch]  # (N, d)
    span = (scatter(pos, batch, dim=0, reduce="max")[batch] - lo).amax(1, keepdim=True).clamp_min(1e-12)
    q = ((pos - lo) / span * (2**MORTON_BITS - 1)).long()  # (N, d) integer coordinates
    code = torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device)
    d = pos.shape[1]
    for bit in range(MORTON_BITS):  # interleave the bits of the d coordinates
        for axis in range(d):
            code |= ((q[:, axis] >> bit) & 1) << (bit * d + axis)
    return torch.argsort(batch * (1 << (MORTON_BITS * d)) + code)


def khop_edges(edge_index: Tensor, n_nodes: int, k: int, self_loops: bool = True) -> Tensor:
    """Pairs within k hops: the sparsity pattern of (A + I)^k, its diagonal dropped unless `self_loops`."""
    loops = torch.arange(n_nodes, device=edge_index.device)
    base = coalesce(torch.cat([edge_index, torch.stack([loops, loops])], 1), num_nodes=n_nodes)
    if k > 1:
        ones = torch.ones(base.shape[1], device=base.device)
        adj = torch.sparse_coo_tensor(base, ones, (n_nodes, n_nodes), check_invariants=False).coalesce()
        out = adj
        for _ in range(k - 1):
            out = torch.sparse.mm(out, adj).coalesce()
        base = out.indices()
    return base if self_loops else base[:, base[0] != base[1]]


def random_edges(batch: Tensor, n_edges: int, generator: torch.Generator | None = None) -> Tensor:
    """`n_edges` random node pairs within each node's own graph, both directions, (2, 2 n_edges)."""
    n = batch.shape[0]
    counts = torch.bincount(batch)
    start = torch.cumsum(counts, 0) - counts
    src = torch.randint(0, n, (n_edges,), generator=generator).to(batch.device)
    g = batch[src]
    dst = start[g] + (torch.rand(n_edges, generator=generator).to(batch.device) * counts[g]).long().clamp_max(counts[g] - 1)
    return torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)


def window_edges(pos: Tensor, batch: Tensor, window: int, dilation: int) -> Tensor:
    """Both directions between nodes `dilation * j` apart (j = 1..window) along the Morton order."""
    order = morton_order(pos, batch)
    parts = []
    for j in range(1, window + 1):
        off = dilation * j
        if off >= len(order):
            break
        a, b = order[:-off], order[off:]
        same = batch[a] == batch[b]
        a, b = a[same], b[same]
        parts += [torch.stack([a, b]), torch.stack([b, a])]
    return torch.cat(parts, 1) if parts else pos.new_zeros((2, 0), dtype=torch.long)


def attention_edges(
    edge_index: Tensor,
    pos: Tensor,
    batch: Tensor,
    khop: int = 1,
    window: int = 0,
    dilation: int = 1,
    self_loops: bool = True,
    random_ratio: float = 0.0,
) -> Tensor:
    """Unique (source, target) pairs of the attention pattern, sorted by target; `random_ratio`
    adds that fraction of the mesh's edge count as random pairs (new ones at every call)."""
    n = pos.shape[0]
    edges = khop_edges(edge_index, n, khop, self_loops)
    if window > 0:
        edges = torch.cat([edges, window_edges(pos, batch, window, dilation)], 1)
    if random_ratio > 0:
        extra = random_edges(batch, int(random_ratio * edge_index.shape[1] / 2))
        edges = torch.cat([edges, extra if self_loops else extra[:, extra[0] != extra[1]]], 1)
    return coalesce(edges.flip(0), num_nodes=n).flip(0)  # sort by target, then source
