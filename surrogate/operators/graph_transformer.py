"""Mesh graph transformer (Garnier et al. 2025): encoder, blocks of attention restricted to
the mesh adjacency, decoder.

Each block is pre-norm multi-head attention over the attention graph (the adjacency with
self-loops, optionally K hops and dilated sliding windows over a Morton order; sparse,
O(E) memory, through `kernels.graph_attention`), then a gated MLP (SwiGLU), each with a
residual. Optional global tokens per graph attend to all of their graph's nodes and every
node attends to them (the two softmaxes merged exactly through their log-sum-exps).
Positions enter as rotary encodings of the node coordinates on queries and keys, so that
the attention logits depend on relative positions only, or as a learned embedding.

Shapes: graph.x (N, in_channels), graph.pos (N, d), graph.edge_index (2, E), graph.batch (N,)
-> (N, out_channels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter, to_dense_batch

from surrogate.errors import InputError
from surrogate.kernels.backend import BACKENDS
from surrogate.kernels.graph_attention import EllGraph, graph_attention, merge_attention
from surrogate.operators.attention_graph import attention_edges
from surrogate.operators.mlp import mlp

POS_ENCODINGS = ("rope", "learned", "none")


@dataclass
class GraphTransformerConfig:
    """`in_channels`, `out_channels` come from the data."""

    in_channels: int = 6
    out_channels: int = 2
    dim: int = 128
    heads: int = 4
    n_blocks: int = 4
    mlp_ratio: float = 2.0
    khop: int = 1
    window: int = 0
    dilation: int = 1
    n_global: int = 0
    pos_encoding: str = "rope"
    backend: str = "auto"


class GatedMLP(nn.Module):
    """SwiGLU: W_out (silu(W_gate x) * W_up x)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(dim, 2 * hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.out(F.silu(gate) * up)


def rotary(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate pairs of channels of x (N, H, D) by angles (N, P), P <= D / 2; the rest pass."""
    p = angles.shape[1]
    cos, sin = angles.cos()[:, None], angles.sin()[:, None]  # (N, 1, P)
    x1, x2, rest = x[..., 0 : 2 * p : 2], x[..., 1 : 2 * p : 2], x[..., 2 * p :]
    rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)  # (N, H, 2P)
    return torch.cat([rotated, rest], dim=-1)


def rope_angles(pos: Tensor, edge_index: Tensor, batch: Tensor, head_dim: int) -> Tensor:
    """(N, d * P) angles: per axis, P frequencies from a wavelength of 4x the graph's extent
    down to 2x its mean edge length, so both neighbours and the whole mesh are told apart.
    Each graph of a batch gets its own scales, so batching changes nothing."""
    d = pos.shape[1]
    p = head_dim // (2 * d)
    extent = (scatter(pos, batch, dim=0, reduce="max") - scatter(pos, batch, dim=0, reduce="min")).amax(1)  # (G,)
    length = (pos[edge_index[0]] - pos[edge_index[1]]).norm(dim=1)  # (E,)
    h = scatter(length, batch[edge_index[1]], dim=0, dim_size=extent.shape[0], reduce="mean")
    h = torch.where(h > 0, h, extent).clamp_min(1e-12)
    frac = torch.linspace(0, 1, p, device=pos.device)  # log-spaced wavelengths from 4 extent to 2 h
    wavelength = torch.exp(torch.log(4 * extent.clamp_min(1e-12))[:, None] * (1 - frac) + torch.log(2 * h)[:, None] * frac)
    freqs = (2 * math.pi / wavelength)[batch]  # (N, P)
    return (pos[:, :, None] * freqs[:, None, :]).flatten(1)  # (N, d * P)


def _dense_batch(xs: tuple[Tensor, ...], batch: Tensor, n_graphs: int) -> tuple[tuple[Tensor, ...], Tensor]:
    """Per-node tensors (N, ...) padded per graph to (n_graphs, N_max, ...), and the (n_graphs, N_max) mask."""
    dense = [to_dense_batch(x.flatten(1), batch, batch_size=n_graphs) for x in xs]
    present = dense[0][1]
    return tuple(d.unflatten(-1, x.shape[1:]) for (d, _), x in zip(dense, xs)), present


class TransformerBlock(nn.Module):
    """Pre-norm sparse attention + gated MLP, residuals; global tokens share the weights."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, backend: str) -> None:
        super().__init__()
        self.heads, self.backend = heads, backend
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = GatedMLP(dim, int(dim * mlp_ratio))

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return tuple(t.unflatten(-1, (self.heads, -1)) for t in (q, k, v))  # each (..., H, Dh)

    def forward(
        self, x: Tensor, ell: EllGraph, edges: Tensor, angles: Tensor | None, batch: Tensor, tokens: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """x (N, dim), tokens (n_graphs, G, dim) or None."""
        q, k, v = self._heads(self.norm1(x))  # (N, H, Dh)
        qr, kr = (rotary(q, angles), rotary(k, angles)) if angles is not None else (q, k)
        scale = 1.0 / math.sqrt(q.shape[-1])
        out, lse = graph_attention(qr, kr, v, ell, edges, scale=scale, backend=self.backend, return_lse=True)
        if tokens is not None:  # tokens have no position: they meet the unrotated queries and keys
            tq, tk, tv = self._heads(self.norm1(tokens))  # (n_graphs, G, H, Dh)
            (qd, kd, vd), present = _dense_batch((q, k, v), batch, tokens.shape[0])  # (n_graphs, N_max, H, Dh)
            s = torch.einsum("bnhd,bghd->bhng", qd, tk) * scale  # nodes -> their graph's tokens
            o_g = torch.einsum("bhng,bghd->bnhd", torch.softmax(s, -1), tv)[present]  # (N, H, Dh)
            out, _ = merge_attention(out, lse, o_g, torch.logsumexp(s, -1).transpose(1, 2)[present])
            st = torch.einsum("bghd,bnhd->bhgn", tq, kd) * scale  # tokens -> their graph's nodes
            st = st.masked_fill(~present[:, None, None, :], float("-inf"))
            to = torch.einsum("bhgn,bnhd->bghd", torch.softmax(st, -1), vd)  # (n_graphs, G, H, Dh)
            tokens = tokens + self.proj(to.flatten(-2))
            tokens = tokens + self.mlp(self.norm2(tokens))
        x = x + self.proj(out.flatten(-2))
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
        mlp_ratio: float = 2.0,
        khop: int = 1,
        window: int = 0,
        dilation: int = 1,
        n_global: int = 0,
        pos_encoding: str = "rope",
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if dim % heads:
            raise InputError(f"graph_transformer: dim {dim} is not divisible by heads {heads}")
        if pos_encoding not in POS_ENCODINGS:
            raise InputError(f"graph_transformer.pos_encoding {pos_encoding!r}: expected one of {POS_ENCODINGS}")
        if backend not in BACKENDS:
            raise InputError(f"graph_transformer.backend {backend!r}: expected one of {BACKENDS}")
        if khop < 1 or window < 0 or dilation < 1 or n_global < 0:
            raise InputError(
                f"graph_transformer: need khop >= 1, window >= 0, dilation >= 1, n_global >= 0; "
                f"got {khop}, {window}, {dilation}, {n_global}"
            )
        self.khop, self.window, self.dilation, self.pos_encoding = khop, window, dilation, pos_encoding
        self.head_dim = dim // heads
        self.encoder = mlp([in_channels, dim, dim], layer_norm=True)
        self.pos_mlp = mlp([3, dim, dim], layer_norm=False) if pos_encoding == "learned" else None
        self.tokens = nn.Parameter(torch.randn(n_global, dim) * 0.02) if n_global else None
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_ratio, backend) for _ in range(n_blocks))
        self.decoder = nn.Sequential(nn.LayerNorm(dim), mlp([dim, dim, out_channels], layer_norm=False))

    def forward(self, graph) -> Tensor:  # graph: torch_geometric Batch or Data
        pos = graph.pos
        batch = graph.batch if getattr(graph, "batch", None) is not None else pos.new_zeros(pos.shape[0], dtype=torch.long)
        edges = attention_edges(graph.edge_index, pos, batch, self.khop, self.window, self.dilation)
        ell = EllGraph.from_edge_index(edges, pos.shape[0])
        x = self.encoder(graph.x)  # (N, dim)
        if self.pos_mlp is not None:
            lo, hi = scatter(pos, batch, dim=0, reduce="min")[batch], scatter(pos, batch, dim=0, reduce="max")[batch]
            unit = (pos - lo) / (hi - lo).clamp_min(1e-12)  # (N, d) in the graph's bounding box
            x = x + self.pos_mlp(F.pad(unit, (0, 3 - pos.shape[1])))
        angles = rope_angles(pos, graph.edge_index, batch, self.head_dim) if self.pos_encoding == "rope" else None
        n_graphs = int(batch.max()) + 1 if batch.numel() else 0
        tokens = self.tokens.expand(n_graphs, -1, -1) if self.tokens is not None else None
        for block in self.blocks:
            x, tokens = block(x, ell, edges, angles, batch, tokens)
        return self.decoder(x)
