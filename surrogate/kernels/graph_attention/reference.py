"""Graph attention in plain PyTorch: scatter-softmax over edge_index, as torch_geometric does.

For each edge j -> i and head h: s = <q_i, k_j> * scale, alpha = softmax of s over the edges
into i, out_i = sum_j alpha v_j. Optional global tokens (keys and values attended by every
node) join each node's softmax. Returns the output and the log-sum-exp of each softmax.

Shapes: q, k, v (N, H, D); edge_index (2, E); global_k, global_v (G, H, D); out (N, H, D); lse (N, H).
"""

from __future__ import annotations

import torch
from torch import Tensor


def graph_attention_reference(
    q: Tensor, k: Tensor, v: Tensor, edge_index: Tensor, scale: float, global_k: Tensor | None = None, global_v: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    n, h, _ = q.shape
    src, dst = edge_index.long()
    # index_select rather than q[dst]: its backward is an index_add, far faster on CPU than
    # the accumulating index_put of advanced indexing.
    s = (q.index_select(0, dst) * k.index_select(0, src)).sum(-1) * scale  # (E, H)
    vals = v.index_select(0, src)  # (E, H, D)
    if global_k is not None and global_v is not None:
        g = global_k.shape[0]
        s_g = torch.einsum("nhd,ghd->ngh", q, global_k).reshape(n * g, h) * scale  # (N*G, H)
        s = torch.cat([s, s_g])
        dst = torch.cat([dst, torch.arange(n, device=q.device).repeat_interleave(g)])
        vals = torch.cat([vals, global_v.repeat(n, 1, 1)])
    smax = torch.full((n, h), float("-inf"), dtype=s.dtype, device=s.device).scatter_reduce(0, dst[:, None].expand_as(s), s, "amax")
    p = torch.exp(s - smax[dst])  # (E, H)
    denom = torch.zeros(n, h, dtype=s.dtype, device=s.device).index_add(0, dst, p)
    out = torch.zeros_like(q).index_add(0, dst, p[..., None] * vals) / denom.clamp_min(1e-38)[..., None]
    return out, smax + torch.log(denom)
