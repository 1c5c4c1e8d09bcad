"""The spectral convolution as a chain of truncated DFTs, all on the Triton `cgemm`.

Forward, for x (B, C_in, n_1, ..., n_d):
  1. last axis, real -> complex: x (R, n_d) @ F_d (n_d, m_d), F = e^{-2 pi i k j / n} / n;
  2. every other axis a (d-1 .. 1): F_a (m_a, n_a) applied along a, complex -> complex;
  3. per mode: X (B, C_in) @ W (C_in, C_out);
  4. inverse along axes 1 .. d-1: G_a (n_a, m_a) = e^{+2 pi i k j / n};
  5. last axis, complex -> real: y = Re(Y (R, m_d) @ H_d (m_d, n_d)), H = c_k e^{+2 pi i k j / n},
     c_0 = 1, c_k = 2 for the other kept k (c_{n/2} = 1): the Hermitian half counted twice.
Only truncated spectra exist in memory: (B, C, n_1 .. n_{d-1}, m_d) after step 1, shrinking
to (B, C, m_1 .. m_d); never the full rfftn. The backward applies the adjoint (conjugate-
transposed) matrices in reverse order, and W's gradient is X^H dY per mode: linear stages
need no recomputation, only the small spectrum X is saved.

Shapes: x (B, C_in, *space); weight (C_in, C_out, *modes) complex; out (B, C_out, *space).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

from surrogate.kernels.cgemm import Planes, cgemm
from surrogate.kernels.spectral_conv.reference import check_shapes, kept_frequencies


@lru_cache(maxsize=64)
def _dft(n: int, m: int, last: bool, inverse: bool, device: torch.device) -> Tensor:
    """Forward (n, m) [last axis] or (m, n) matrix, or the inverse (m, n) [last] or (n, m)."""
    k = kept_frequencies(n, m, last).to(torch.float64)
    j = torch.arange(n, dtype=torch.float64)
    phase = 2 * math.pi * torch.outer(k, j) / n  # (m, n)
    if inverse:
        mat = torch.polar(torch.ones_like(phase), phase)  # e^{+i phase}
        if last:
            weight = torch.full((m, 1), 2.0, dtype=torch.float64)
            weight[k == 0] = 1.0
            if n % 2 == 0:
                weight[k == n // 2] = 1.0
            mat = mat * weight
            return mat.to(torch.complex64).to(device)  # (m, n)
        return mat.T.contiguous().to(torch.complex64).to(device)  # (n, m)
    mat = torch.polar(torch.ones_like(phase), -phase) / n
    return (mat.T.contiguous() if last else mat).to(torch.complex64).to(device)


def _along(t: Tensor, mat: Tensor, axis: int, real_out: bool = False) -> Tensor:
    """Apply `mat` (m, n) along `axis` of t (.., n, ..): out (.., m, ..). Complex out unless real_out."""
    shape = t.shape
    p, n, q = math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :])
    a = Planes.of(mat.unsqueeze(0).expand(p, *mat.shape))  # shared across the batch (stride 0)
    b = Planes.of(t.reshape(p, n, q))
    out = cgemm(a, b, complex_out=not real_out)  # (P, m, Q)
    return out.view(*shape[:axis], mat.shape[0], *shape[axis + 1 :])


def _last(t: Tensor, mat: Tensor, real_out: bool) -> Tensor:
    """t (.., n) @ mat (n, m) along the last axis: (.., m)."""
    shape = t.shape
    out = cgemm(Planes.of(t.reshape(1, -1, shape[-1])), Planes.of(mat.unsqueeze(0)), complex_out=not real_out)
    return out.view(*shape[:-1], mat.shape[1])


def _mix(x: Tensor, w: Tensor, conj_x: bool = False) -> Tensor:
    """Per mode k: x[:, :, k] (P, Q) @ w[:, :, k] (Q, R) -> (P, R, K); x (P, Q, K), w (Q, R, K) complex."""
    xp = Planes.of(x.permute(2, 0, 1))  # (K, P, Q)
    if conj_x:
        xp = xp.conj()
    out = cgemm(xp, Planes.of(w.permute(2, 0, 1)), complex_out=True)  # (K, P, R)
    return out.permute(1, 2, 0)


def _forward_dft(x: Tensor, modes: tuple[int, ...]) -> Tensor:
    d = len(modes)
    t = _last(x, _dft(x.shape[-1], modes[-1], True, False, x.device), real_out=False)
    for a in range(d - 2, -1, -1):
        t = _along(t, _dft(x.shape[2 + a], modes[a], False, False, x.device), 2 + a)
    return t  # (B, C, *modes)


def _inverse_dft(y: Tensor, space: tuple[int, ...]) -> Tensor:
    d = len(space)
    for a in range(d - 1):
        y = _along(y, _dft(space[a], y.shape[2 + a], False, True, y.device), 2 + a)
    return _last(y, _dft(space[-1], y.shape[-1], True, True, y.device), real_out=True)


def _adjoint(mat: Tensor) -> Tensor:
    return mat.conj().T.contiguous()


class _SpectralConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):  # type: ignore[override]
        b, cin, *space = x.shape
        modes = tuple(weight.shape[2:])
        xk = _forward_dft(x.contiguous(), modes)  # (B, C_in, *modes)
        w = weight.to(torch.complex64)
        yk = _mix(xk.reshape(b, cin, -1), w.reshape(cin, w.shape[1], -1)).reshape(b, w.shape[1], *modes)
        ctx.save_for_backward(xk, w)
        ctx.space, ctx.in_dtype, ctx.w_dtype = tuple(space), x.dtype, weight.dtype
        return _inverse_dft(yk.contiguous(), tuple(space)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        xk, w = ctx.saved_tensors
        space, d = ctx.space, len(ctx.space)
        b, cin, *modes = xk.shape
        cout = w.shape[1]
        g = _last(grad_out.contiguous().float(), _adjoint(_dft(space[-1], modes[-1], True, True, xk.device)), real_out=False)
        for a in range(d - 2, -1, -1):
            g = _along(g, _adjoint(_dft(space[a], modes[a], False, True, xk.device)), 2 + a)
        gy = g.reshape(b, cout, -1)  # dY (B, C_out, K)
        grad_w = _mix(xk.reshape(b, cin, -1).transpose(0, 1), gy, conj_x=True).reshape(cin, cout, *modes)
        gx = _mix(gy, w.reshape(cin, cout, -1).transpose(0, 1).conj().resolve_conj()).reshape(b, cin, *modes)
        for a in range(d - 1):
            gx = _along(gx, _adjoint(_dft(space[a], modes[a], False, False, xk.device)), 2 + a)
        grad_x = _last(gx, _adjoint(_dft(space[-1], modes[-1], True, False, xk.device)), real_out=True)
        return grad_x.to(ctx.in_dtype), grad_w.to(ctx.w_dtype)


def spectral_conv_triton(x: Tensor, weight: Tensor) -> Tensor:
    """The spectral convolution on the Triton kernels; same conventions as the reference."""
    check_shapes(x, weight)
    return _SpectralConv.apply(x, weight)
