"""A batched, strided, complex-aware matrix product in Triton: the one primitive of the
spectral-convolution kernel (truncated DFTs along an axis and the per-mode channel mix).

C[b] = A[b] @ B[b] over one or two batch dims, each operand a real tensor or a complex one given as real and
imaginary planes (strided views of `torch.view_as_real`, no copies); a stride of 0 shares an
operand across the batch. Inputs may be fp32 or bf16; accumulation is fp32. A real C keeps
only the real part (Re(A B)), which is how the last, Hermitian axis returns to real space.

Shapes: A (*batch, M, K), B (*batch, K, N), C (*batch, M, N); batch is (B1,) or (B1, B2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _cgemm_kernel(
    a_re,
    a_im,
    b_re,
    b_im,
    c_re,
    c_im,
    M,
    N,
    K,
    NB2,
    sab,
    sab2,
    sam,
    sak,
    sbb,
    sbb2,
    sbk,
    sbn,
    scb,
    scb2,
    scm,
    scn,
    A_COMPLEX: tl.constexpr,
    B_COMPLEX: tl.constexpr,
    C_COMPLEX: tl.constexpr,
    PRECISION: tl.constexpr,
    BM: tl.constexpr,
    BN: tl.constexpr,
    BK: tl.constexpr,
):
    pid_b, pid_m, pid_n = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    b1, b2 = pid_b // NB2, pid_b % NB2
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc_re = tl.zeros((BM, BN), dtype=tl.float32)
    acc_im = tl.zeros((BM, BN), dtype=tl.float32)
    for k0 in range(0, K, BK):
        kk = k0 + rk
        a_off = b1 * sab + b2 * sab2 + rm[:, None] * sam + kk[None, :] * sak  # (BM, BK)
        a_mask = (rm[:, None] < M) & (kk[None, :] < K)
        b_off = b1 * sbb + b2 * sbb2 + kk[:, None] * sbk + rn[None, :] * sbn  # (BK, BN)
        b_mask = (kk[:, None] < K) & (rn[None, :] < N)
        ar = tl.load(a_re + a_off, mask=a_mask, other=0.0).to(tl.float32)
        br = tl.load(b_re + b_off, mask=b_mask, other=0.0).to(tl.float32)
        acc_re += tl.dot(ar, br, input_precision=PRECISION)
        if A_COMPLEX:
            ai = tl.load(a_im + a_off, mask=a_mask, other=0.0).to(tl.float32)
            if C_COMPLEX:
                acc_im += tl.dot(ai, br, input_precision=PRECISION)
        if B_COMPLEX:
            bi = tl.load(b_im + b_off, mask=b_mask, other=0.0).to(tl.float32)
            if C_COMPLEX:
                acc_im += tl.dot(ar, bi, input_precision=PRECISION)
            if A_COMPLEX:
                acc_re -= tl.dot(ai, bi, input_precision=PRECISION)
    c_off = b1 * scb + b2 * scb2 + rm[:, None] * scm + rn[None, :] * scn
    c_mask = (rm[:, None] < M) & (rn[None, :] < N)
    tl.store(c_re + c_off, acc_re, mask=c_mask)
    if C_COMPLEX:
        tl.store(c_im + c_off, acc_im, mask=c_mask)


@dataclass(frozen=True)
class Planes:
    """A (*batch, rows, cols) operand: real part and, for complex data, the imaginary part."""

    re: Tensor
    im: Tensor | None = None

    @staticmethod
    def of(t: Tensor) -> Planes:
        """Planes of a real or complex tensor (views, no copy)."""
        if t.is_complex():
            r = torch.view_as_real(t)
            return Planes(r[..., 0], r[..., 1])
        return Planes(t)

    def conj(self) -> Planes:
        """The conjugate, as contiguous copies (both planes must share strides)."""
        return self if self.im is None else Planes(self.re.contiguous(), (-self.im).contiguous())


def _block(n: int) -> int:
    return max(16, min(64, triton.next_power_of_2(n)))


def cgemm(a: Planes, b: Planes, complex_out: bool, out_dtype: torch.dtype = torch.float32) -> Tensor:
    """C = A @ B per batch as a real (*batch, M, N) tensor, or complex when `complex_out`."""
    *batch, m, k = a.re.shape
    n = b.re.shape[-1]
    if len(batch) not in (1, 2) or tuple(b.re.shape[:-2]) != tuple(batch) or b.re.shape[-2] != k:
        raise ValueError(f"cgemm: A {tuple(a.re.shape)} and B {tuple(b.re.shape)} do not chain over one or two batch dims")
    if complex_out:
        c = torch.empty(*batch, m, n, dtype=torch.complex64, device=a.re.device)
        cp = Planes.of(c)
    else:
        c = torch.empty(*batch, m, n, dtype=out_dtype, device=a.re.device)
        cp = Planes(c, c)

    def strides(t: Tensor) -> tuple[int, ...]:  # (batch1, batch2, row, col)
        st = t.stride()
        return st if len(batch) == 2 else (st[0], 0, st[1], st[2])

    a_im = a.im if a.im is not None else a.re
    b_im = b.im if b.im is not None else b.re
    precision = "tf32" if a.re.is_cuda and a.re.dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32 else "ieee"
    bm, bn, bk = _block(m), _block(n), _block(k)
    nb2 = batch[1] if len(batch) == 2 else 1
    grid = (batch[0] * nb2, triton.cdiv(m, bm), triton.cdiv(n, bn))
    _cgemm_kernel[grid](
        a.re,
        a_im,
        b.re,
        b_im,
        cp.re,
        cp.im if cp.im is not None else cp.re,
        m,
        n,
        k,
        nb2,
        *strides(a.re),
        *strides(b.re),
        *strides(cp.re),
        A_COMPLEX=a.im is not None,
        B_COMPLEX=b.im is not None,
        C_COMPLEX=complex_out,
        PRECISION=precision,
        BM=bm,
        BN=bn,
        BK=bk,
    )
    return c
