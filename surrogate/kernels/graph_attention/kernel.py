"""Triton kernels of graph attention on padded ELL neighbour lists (FlashAttention-style).

Forward: one program per (block of target nodes, head) walks the neighbour slots with an
online softmax, gathering K and V rows; it writes the output and the log-sum-exp, nothing
per edge. Backward by recomputation: `Delta_i = <dO_i, O_i> - dlse_i`, then
  dQ: the same walk, ds = p (<dO_i, v_j> - Delta_i), dq += ds k_j scale;
  dK, dV: a walk over each source's reverse list (its out-edges), so each row is written by
  one program (deterministic), or, with `atomics`, scattered from the dQ walk by atomic adds.
Memory O(N + E): no N x N or E x H x D intermediate.

Shapes: q, k, v, o (N, H, D) contiguous; lse, delta (N, H) fp32; neighbors (N, L) int32, -1 padded.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _row_tile(N, H: tl.constexpr, D: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr):
    """This program's block of nodes for its head: rows, head, (BN, BD) offsets and mask."""
    h = tl.program_id(1)
    rows = tl.program_id(0) * BN + tl.arange(0, BN)
    cols = tl.arange(0, BD)
    rmask = rows < N
    om = rmask[:, None] & (cols < D)[None, :]
    # Element offsets in int64: N * H * D passes 2^31 at 16M nodes of 4 x 32 (an illegal address in int32).
    return rows, h, cols, rmask, rows.to(tl.int64)[:, None] * (H * D) + h * D + cols[None, :], om


@triton.jit
def _slot(lists, rows, rmask, j, L, h, cols, H: tl.constexpr, D: tl.constexpr):
    """Slot j of each row's list: the listed node (0 where padded), validity, (BN, BD) offsets and mask."""
    idx = tl.load(lists + rows.to(tl.int64) * L + j, mask=rmask, other=-1)
    valid = idx >= 0
    node = tl.where(valid, idx, 0)
    return node, valid, node.to(tl.int64)[:, None] * (H * D) + h * D + cols[None, :], valid[:, None] & (cols < D)[None, :]


@triton.jit
def _forward_kernel(q, k, v, nbr, o, lse, N, L, scale, H: tl.constexpr, D: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr):
    rows, h, cols, rmask, own, om = _row_tile(N, H, D, BN, BD)
    qt = tl.load(q + own, mask=om, other=0.0).to(tl.float32)
    m = tl.full((BN,), float("-inf"), tl.float32)
    l_sum = tl.zeros((BN,), tl.float32)
    acc = tl.zeros((BN, BD), tl.float32)
    for j in range(0, L):
        _, valid, off, vm = _slot(nbr, rows, rmask, j, L, h, cols, H, D)
        kt = tl.load(k + off, mask=vm, other=0.0).to(tl.float32)
        s = tl.where(valid, tl.sum(qt * kt, 1) * scale, float("-inf"))
        m_new = tl.maximum(m, s)
        m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha, p = tl.exp(m - m_ref), tl.exp(s - m_ref)
        vt = tl.load(v + off, mask=vm, other=0.0).to(tl.float32)
        acc = acc * alpha[:, None] + p[:, None] * vt
        l_sum = l_sum * alpha + p
        m = m_new
    out = acc / tl.where(l_sum > 0, l_sum, 1.0)[:, None]
    tl.store(o + own, out, mask=om)
    tl.store(lse + rows * H + h, tl.where(l_sum > 0, m + tl.log(l_sum), float("-inf")), mask=rmask)


@triton.jit
def _grad_q_kernel(
    q,
    k,
    v,
    do,
    lse,
    delta,
    nbr,
    dq,
    dk,
    dv,
    N,
    L,
    scale,
    H: tl.constexpr,
    D: tl.constexpr,
    ATOMICS: tl.constexpr,
    BN: tl.constexpr,
    BD: tl.constexpr,
):
    rows, h, cols, rmask, own, om = _row_tile(N, H, D, BN, BD)
    qt = tl.load(q + own, mask=om, other=0.0).to(tl.float32)
    dot = tl.load(do + own, mask=om, other=0.0).to(tl.float32)
    lse_i = tl.load(lse + rows * H + h, mask=rmask, other=0.0)
    delta_i = tl.load(delta + rows * H + h, mask=rmask, other=0.0)
    acc = tl.zeros((BN, BD), tl.float32)
    for j in range(0, L):
        _, valid, off, vm = _slot(nbr, rows, rmask, j, L, h, cols, H, D)
        kt = tl.load(k + off, mask=vm, other=0.0).to(tl.float32)
        vt = tl.load(v + off, mask=vm, other=0.0).to(tl.float32)
        p = tl.where(valid, tl.exp(tl.sum(qt * kt, 1) * scale - lse_i), 0.0)
        ds = p * (tl.sum(dot * vt, 1) - delta_i)
        acc += ds[:, None] * kt * scale
        if ATOMICS:
            tl.atomic_add(dk + off, ds[:, None] * qt * scale, mask=vm)
            tl.atomic_add(dv + off, p[:, None] * dot, mask=vm)
    tl.store(dq + own, acc, mask=om)


@triton.jit
def _grad_kv_kernel(
    q, k, v, do, lse, delta, rev, dk, dv, N, L, scale, H: tl.constexpr, D: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr
):
    rows, h, cols, rmask, own, om = _row_tile(N, H, D, BN, BD)
    kt = tl.load(k + own, mask=om, other=0.0).to(tl.float32)
    vt = tl.load(v + own, mask=om, other=0.0).to(tl.float32)
    acc_k = tl.zeros((BN, BD), tl.float32)
    acc_v = tl.zeros((BN, BD), tl.float32)
    for j in range(0, L):
        tgt, valid, off, vm = _slot(rev, rows, rmask, j, L, h, cols, H, D)
        qt = tl.load(q + off, mask=vm, other=0.0).to(tl.float32)
        dot = tl.load(do + off, mask=vm, other=0.0).to(tl.float32)
        lse_i = tl.load(lse + tgt * H + h, mask=valid, other=0.0)
        delta_i = tl.load(delta + tgt * H + h, mask=valid, other=0.0)
        p = tl.where(valid, tl.exp(tl.sum(qt * kt, 1) * scale - lse_i), 0.0)
        ds = p * (tl.sum(dot * vt, 1) - delta_i)
        acc_v += p[:, None] * dot
        acc_k += ds[:, None] * qt * scale
    tl.store(dk + own, acc_k, mask=om)
    tl.store(dv + own, acc_v, mask=om)


def _launch(n: int, h: int, d: int) -> tuple[tuple[int, int], int, int]:
    bn, bd = 32, max(16, triton.next_power_of_2(d))
    return (triton.cdiv(n, bn), h), bn, bd


def forward(q: Tensor, k: Tensor, v: Tensor, neighbors: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    n, h, d = q.shape
    o = torch.empty_like(q)
    lse = torch.empty(n, h, dtype=torch.float32, device=q.device)
    grid, bn, bd = _launch(n, h, d)
    _forward_kernel[grid](q, k, v, neighbors, o, lse, n, neighbors.shape[1], scale, H=h, D=d, BN=bn, BD=bd)
    return o, lse


def backward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    grad_out: Tensor,
    lse: Tensor,
    delta: Tensor,
    neighbors: Tensor,
    reverse: Tensor,
    scale: float,
    atomics: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    n, h, d = q.shape
    dq = torch.empty(n, h, d, dtype=torch.float32, device=q.device)
    dk = torch.zeros(k.shape, dtype=torch.float32, device=q.device)
    dv = torch.zeros(v.shape, dtype=torch.float32, device=q.device)
    grid, bn, bd = _launch(n, h, d)
    _grad_q_kernel[grid](
        q, k, v, grad_out, lse, delta, neighbors, dq, dk, dv, n, neighbors.shape[1], scale, H=h, D=d, ATOMICS=atomics, BN=bn, BD=bd
    )
    if not atomics:
        _grad_kv_kernel[grid](q, k, v, grad_out, lse, delta, reverse, dk, dv, n, reverse.shape[1], scale, H=h, D=d, BN=bn, BD=bd)
    return dq, dk, dv
