"""Mesh graph transformer (Garnier et al. 2025) as their public code builds it
(`DonsetPG/graph-physics`, `EncodeTransformDecode` with `Transformer` blocks): encoder, blocks of
attention restricted to the mesh adjacency, decoder.

    encoder   4-layer ReLU MLP (in -> dim -> dim -> dim -> dim), RMSNorm on its output;
    block     x += Attention(RMSNorm(x)); x += GatedMLP(RMSNorm(x)), where the attention has
              separate Q, K, V projections (bias), softmax over each node's neighbours in the
              attention graph (no self-loops), an optional sigmoid output gate
              (`gated_attention`), and an output projection; the gated MLP is RMSNorm, then
              GELU(W1 x) * W2 x with W1, W2 of width 3 dim (`mlp_expansion`), then a Linear;
    decoder   4-layer ReLU MLP, no norm.

`silu` switches the MLPs to SiLU as their global flag does. Heads split the channels as their
`reshape(N, head_dim, heads)` (head h takes channels h, h + H, ...). Positions enter only as
their rotary encoding of absolute coordinates (`pos_encoding: rope`, off by default, as theirs):
per axis, m = head_dim / (2 d) frequencies base^(-j / m), angles = coordinate x frequency, in
physical units, so that the logits depend on relative positions only and one model transfers
between meshes of any size. `random_edges` adds that fraction of random within-graph pairs per
training step (their `new_edges_ratio`).

Ours, as options: `self_loops` (each node also attends to itself), `khop`, dilated sliding
`window`s over a Morton order (`operators/attention_graph.py`), and `n_global` global tokens per
graph that attend to all of their graph's nodes while every node attends to them (the two
softmaxes merged exactly through their log-sum-exps). The sparse attention is O(E) in memory
through `kernels.graph_attention`.

Shapes: graph.x (N, in_channels), graph.pos (N, d), graph.edge_index (2, E), graph.batch (N,)
-> (N, out_channels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.utils import to_dense_batch

from surrogate.errors import InputError
from surrogate.kernels.backend import BACKENDS
from surrogate.kernels.graph_attention import EllGraph, graph_attention, merge_attention
from surrogate.operators.attention_graph import attention_edges
from surrogate.operators.mlp import mlp

POS_ENCODINGS = ("none", "rope")


@dataclass
class GraphTransformerConfig:
    """The published block by default; `self_loops`, `khop`, `window`, `dilation`, `n_global`
    are ours. `in_channels`, `out_channels` come from the data."""

    in_channels: int = 6
    out_channels: int = 2
    dim: int = 128
    heads: int = 4
    n_blocks: int = 4
    mlp_expansion: int = 3
    gated_attention: bool = False
    silu: bool = False
    pos_encoding: str = "none"
    rope_base: float = 10000.0
    random_edges: float = 0.0
    self_loops: bool = False
    khop: int = 1
    window: int = 0
    dilation: int = 1
    n_global: int = 0
    backend: str = "auto"


def norm(dim: int) -> nn.RMSNorm:
    return nn.RMSNorm(dim, eps=1e-8)


class GatedMLP(nn.Module):
    """RMSNorm, act(W1 x) * W2 x, Linear: (..., dim) -> (..., dim); act GELU (or SiLU)."""

    def __init__(self, dim: int, expansion: int, silu: bool) -> None:
        super().__init__()
        self.norm = norm(dim)
        self.linear1 = nn.Linear(dim, expansion * dim)
        self.linear2 = nn.Linear(dim, expansion * dim)
        self.act = nn.SiLU() if silu else nn.GELU()
        self.out = nn.Linear(expansion * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        return self.out(self.act(self.linear1(x)) * self.linear2(x))


def rotary(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate pairs of channels of x (N, H, D) by angles (N, P), P <= D / 2; the rest pass."""
    p = angles.shape[1]
    cos, sin = angles.cos()[:, None], angles.sin()[:, None]  # (N, 1, P)
    x1, x2, rest = x[..., 0 : 2 * p : 2], x[..., 1 : 2 * p : 2], x[..., 2 * p :]
    rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)  # (N, H, 2P)
    return torch.cat([rotated, rest], dim=-1)


def rope_angles(pos: Tensor, head_dim: int, base: float = 10000.0) -> Tensor:
    """(N, d * m) angles of the absolute coordinates, axis-major: m = head_dim // (2 d)
    frequencies base^(-j / m) per axis, in the coordinates' own (physical) units."""
    d = pos.shape[1]
    m = head_dim // (2 * d)
    inv_freq = torch.exp(-torch.arange(m, device=pos.device, dtype=torch.float32) * (math.log(base) / max(m, 1)))
    return (pos.float()[:, :, None] * inv_freq).flatten(1).to(pos.dtype)


def _dense_batch(xs: tuple[Tensor, ...], batch: Tensor, n_graphs: int) -> tuple[tuple[Tensor, ...], Tensor]:
    """Per-node tensors (N, ...) padded per graph to (n_graphs, N_max, ...), and the (n_graphs, N_max) mask."""
    dense = [to_dense_batch(x.flatten(1), batch, batch_size=n_graphs) for x in xs]
    present = dense[0][1]
    return tuple(d.unflatten(-1, x.shape[1:]) for (d, _), x in zip(dense, xs)), present


class TransformerBlock(nn.Module):
    """Pre-norm sparse attention + gated MLP, residuals; global tokens share the weights."""

    def __init__(
        self, dim: int, heads: int, mlp_expansion: int = 3, gated_attention: bool = False, silu: bool = False, backend: str = "auto"
    ) -> None:
        super().__init__()
        self.heads, self.backend = heads, backend
        self.norm1, self.norm2 = norm(dim), norm(dim)
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.gate_proj = nn.Linear(dim, dim) if gated_attention else None
        self.proj = nn.Linear(dim, dim)
        self.mlp = GatedMLP(dim, mlp_expansion, silu)

    def split(self, t: Tensor) -> Tensor:
        """(..., dim) -> (..., H, Dh), head h taking channels h, h + H, ... (their reshape)."""
        return t.unflatten(-1, (-1, self.heads)).transpose(-1, -2)

    def merge(self, t: Tensor, x: Tensor) -> Tensor:
        """Gated (when asked), heads merged back to channels, projected: (..., H, Dh) -> (..., dim)."""
        if self.gate_proj is not None:
            t = t * self.split(torch.sigmoid(self.gate_proj(x)))
        return self.proj(t.transpose(-1, -2).flatten(-2))

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.split(self.q_proj(x)), self.split(self.k_proj(x)), self.split(self.v_proj(x))  # each (..., H, Dh)

    def forward(
        self, x: Tensor, ell: EllGraph, edges: Tensor, angles: Tensor | None, batch: Tensor, tokens: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """x (N, dim), tokens (n_graphs, G, dim) or None."""
        h = self.norm1(x)
        q, k, v = self._heads(h)  # (N, H, Dh)
        qr, kr = (rotary(q, angles), rotary(k, angles)) if angles is not None else (q, k)
        scale = 1.0 / math.sqrt(q.shape[-1])
        out, lse = graph_attention(qr, kr, v, ell, edges, scale=scale, backend=self.backend, return_lse=True)
        if tokens is not None:  # tokens have no position: they meet the unrotated queries and keys
            ht = self.norm1(tokens)
            tq, tk, tv = self._heads(ht)  # (n_graphs, G, H, Dh)
            (qd, kd, vd), present = _dense_batch((q, k, v), batch, tokens.shape[0])  # (n_graphs, N_max, H, Dh)
            s = torch.einsum("bnhd,bghd->bhng", qd, tk) * scale  # nodes -> their graph's tokens
            o_g = torch.einsum("bhng,bghd->bnhd", torch.softmax(s, -1), tv)[present]  # (N, H, Dh)
            out, _ = merge_attention(out, lse, o_g, torch.logsumexp(s, -1).transpose(1, 2)[present])
            st = torch.einsum("bghd,bnhd->bhgn", tq, kd) * scale  # tokens -> their graph's nodes
            st = st.masked_fill(~present[:, None, None, :], float("-inf"))
            to = torch.einsum("bhgn,bnhd->bghd", torch.softmax(st, -1), vd)  # (n_graphs, G, H, Dh)
            tokens = tokens + self.merge(to, ht)
            tokens = tokens + self.mlp(self.norm2(tokens))
        x = x + self.merge(out, h)
        x = x + self.mlp(self.norm2(x))
        return x, tokens


class GraphTransformer(nn.Module):
    def __init__(
        self,
        in_channels: int = 6,
        out_channels: int = 2,
        dim: int = 128,
        heads: int = 4,
        n_blocks: int = 4,
        mlp_expansion: int = 3,
        gated_attention: bool = False,
        silu: bool = False,
        pos_encoding: str = "none",
        rope_base: float = 10000.0,
        random_edges: float = 0.0,
        self_loops: bool = False,
        khop: int = 1,
        window: int = 0,
        dilation: int = 1,
        n_global: int = 0,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if dim % heads:
            raise InputError(f"graph_transformer: dim {dim} is not divisible by heads {heads}")
        if pos_encoding not in POS_ENCODINGS:
            raise InputError(f"graph_transformer.pos_encoding {pos_encoding!r}: expected one of {POS_ENCODINGS}")
        if backend not in BACKENDS:
            raise InputError(f"graph_transformer.backend {backend!r}: expected one of {BACKENDS}")
        if khop < 1 or window < 0 or dilation < 1 or n_global < 0 or mlp_expansion < 1 or not 0 <= random_edges <= 1 or rope_base <= 1:
            raise InputError(
                "graph_transformer: need khop >= 1, window >= 0, dilation >= 1, n_global >= 0, mlp_expansion >= 1, "
                f"0 <= random_edges <= 1, rope_base > 1; got {khop}, {window}, {dilation}, {n_global}, {mlp_expansion}, "
                f"{random_edges}, {rope_base}"
            )
        self.khop, self.window, self.dilation, self.self_loops = khop, window, dilation, self_loops
        self.pos_encoding, self.rope_base, self.random_edges = pos_encoding, rope_base, random_edges
        self.head_dim = dim // heads
        act = nn.SiLU if silu else nn.ReLU
        self.encoder = mlp([in_channels, dim, dim, dim, dim], layer_norm=True, norm=norm, act=act)
        self.tokens = nn.Parameter(torch.randn(n_global, dim) * 0.02) if n_global else None
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_expansion, gated_attention, silu, backend) for _ in range(n_blocks))
        self.decoder = mlp([dim, dim, dim, dim, out_channels], layer_norm=False, act=act)

    def forward(self, graph) -> Tensor:  # graph: torch_geometric Batch or Data
        pos = graph.pos
        batch = graph.batch if getattr(graph, "batch", None) is not None else pos.new_zeros(pos.shape[0], dtype=torch.long)
        ratio = self.random_edges if self.training else 0.0
        edges = attention_edges(graph.edge_index, pos, batch, self.khop, self.window, self.dilation, self.self_loops, ratio)
        ell = EllGraph.from_edge_index(edges, pos.shape[0])
        x = self.encoder(graph.x)  # (N, dim)
        angles = rope_angles(pos, self.head_dim, self.rope_base) if self.pos_encoding == "rope" else None
        n_graphs = int(batch.max()) + 1 if batch.numel() else 0
        tokens = self.tokens.expand(n_graphs, -1, -1) if self.tokens is not None else None
        for block in self.blocks:
            x, tokens = block(x, ell, edges, angles, batch, tokens)
        return self.decoder(x)
