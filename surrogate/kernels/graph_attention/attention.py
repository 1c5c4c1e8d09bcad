"""Graph attention with a selectable backend and optional dense global tokens.

Nodes attend to their graph neighbours (the kernel, over `EllGraph`) and to G global tokens
(dense, G is small); the two partial softmaxes are merged exactly through their
log-sum-exps: lse = logaddexp(lse_graph, lse_global), out = sum_part exp(lse_part - lse) out_part.

Shapes: q, k, v (N, H, D); global_k, global_v (G, H, D); out (N, H, D).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from surrogate.errors import InputError
from surrogate.kernels.backend import resolve_backend
from surrogate.kernels.graph_attention.ell import EllGraph
from surrogate.kernels.graph_attention.reference import graph_attention_reference


class _GraphAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, graph, scale, atomics):  # type: ignore[override]
        from surrogate.kernels.graph_attention import kernel

        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        o, lse = kernel.forward(q, k, v, graph.neighbors, scale)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.graph, ctx.scale, ctx.atomics = graph, scale, atomics
        return o, lse

    @staticmethod
    def backward(ctx, grad_o, grad_lse):  # type: ignore[override]
        from surrogate.kernels.graph_attention import kernel

        q, k, v, o, lse = ctx.saved_tensors
        grad_o = torch.zeros_like(o) if grad_o is None else grad_o.contiguous()
        delta = (grad_o.float() * o.float()).sum(-1)  # (N, H)
        if grad_lse is not None:
            delta = delta - torch.where(torch.isfinite(lse), grad_lse, 0.0)
        dq, dk, dv = kernel.backward(
            q, k, v, grad_o, lse, delta.contiguous(), ctx.graph.neighbors, ctx.graph.reverse, ctx.scale, ctx.atomics
        )
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, None, None


def merge_attention(o1: Tensor, lse1: Tensor, o2: Tensor, lse2: Tensor) -> tuple[Tensor, Tensor]:
    """Two softmax-attention outputs over disjoint key sets merged into the one over their union.

    Shapes: o1, o2 (N, H, D); lse1, lse2 (N, H).
    """
    lse = torch.logaddexp(lse1, lse2)  # (N, H)
    w1 = torch.where(torch.isfinite(lse1), torch.exp(lse1 - lse), 0.0)[..., None]
    return o1 * w1 + o2 * torch.exp(lse2 - lse)[..., None], lse


def graph_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    graph: EllGraph,
    edge_index: Tensor | None = None,
    global_k: Tensor | None = None,
    global_v: Tensor | None = None,
    scale: float | None = None,
    backend: str = "auto",
    atomics: bool = False,
    return_lse: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """softmax-attention of every node over its in-neighbours (and the global tokens).

    `edge_index` (2, E) is needed by the reference backend only; `atomics` makes the Triton
    backward scatter dK, dV with atomic adds (faster, not bit-reproducible). With
    `return_lse` the log-sum-exp of each softmax (N, H) comes too, for `merge_attention`.
    """
    if q.ndim != 3 or k.shape != q.shape or v.shape[:2] != q.shape[:2]:
        raise InputError(
            f"graph attention: expected q, k (N, H, D) and v (N, H, D_v), got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if graph.n_nodes != q.shape[0]:
        raise InputError(f"graph attention: the graph has {graph.n_nodes} nodes, q has {q.shape[0]}")
    if graph.neighbors.device != q.device:
        raise InputError(f"graph attention: the graph is on {graph.neighbors.device}, q on {q.device}; move it with graph.to(device)")
    if (global_k is None) != (global_v is None):
        raise InputError("graph attention: give both global_k and global_v, or neither")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if resolve_backend(backend, q, "graph_attention") == "reference":
        if edge_index is None:
            raise InputError("graph attention: the reference backend needs edge_index")
        out, lse = graph_attention_reference(q, k, v, edge_index, scale, global_k, global_v)
        return (out, lse) if return_lse else out
    out, lse = _GraphAttention.apply(q, k, v, graph, scale, atomics)
    if global_k is not None and global_v is not None:
        s = torch.einsum("nhd,ghd->nhg", q.float(), global_k.float()) * scale  # (N, H, G)
        lse_g = torch.logsumexp(s, -1)
        o_g = torch.einsum("nhg,ghd->nhd", torch.softmax(s, -1), global_v.float())
        merged, lse = merge_attention(out.float(), lse, o_g, lse_g)
        out = merged.to(q.dtype)
    return (out, lse) if return_lse else out
