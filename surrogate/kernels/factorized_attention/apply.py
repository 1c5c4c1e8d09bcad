"""Factorized kernel application on the Triton `cgemm`: one strided pass per axis.

The product along axis a is a GEMM batched over (B*H, everything before a): K_a (n_a, n_a)
shared across the inner batch (stride 0) times the field viewed as (n_a, everything after a),
read and written in place of memory order, so no permuted copies are made (the einsum
chain copies to make each contraction contiguous). Three passes for a 3D field: the volume
is read and written once per axis, not once in all. The backward recomputes the
intermediate fields, applies the transposed kernels in reverse order, and forms each
kernel's gradient as one GEMM over the flattened other axes.

Shapes: v (B, H, *space, C); kernels K_a (B, H, n_a, n_a); out like v.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from surrogate.kernels.backend import resolve_backend
from surrogate.kernels.factorized_attention.reference import axial_apply_reference, check_shapes


def _mode_product(k: Tensor, t: Tensor, axis: int) -> Tensor:
    """K (BH, n, n) applied along space axis `axis` of t (BH, *space, C) -> same shape."""
    from surrogate.kernels.cgemm import Planes, cgemm

    bh, n = t.shape[0], t.shape[1 + axis]
    p, q = math.prod(t.shape[1 : 1 + axis]), math.prod(t.shape[2 + axis :])
    a = Planes(k[:, None].expand(bh, p, n, n))
    b = Planes(t.reshape(bh, p, n, q))
    return cgemm(a, b, complex_out=False, out_dtype=t.dtype).view(t.shape)


def _kernel_grad(g: Tensor, t: Tensor, axis: int) -> Tensor:
    """sum over all but `axis` of g[.., i, ..] t[.., j, ..]: (BH, n, n)."""
    from surrogate.kernels.cgemm import Planes, cgemm

    gm = g.movedim(1 + axis, 1).reshape(g.shape[0], g.shape[1 + axis], -1)  # (BH, n, rest)
    tm = t.movedim(1 + axis, 1).reshape(t.shape[0], t.shape[1 + axis], -1)
    return cgemm(Planes(gm), Planes(tm.transpose(1, 2)), complex_out=False)


class _AxialApply(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, *kernels):  # type: ignore[override]
        bh = v.shape[0] * v.shape[1]
        t = v.reshape(bh, *v.shape[2:]).contiguous()
        ks = [k.reshape(bh, *k.shape[2:]).contiguous() for k in kernels]
        for a in range(len(ks) - 1, -1, -1):
            t = _mode_product(ks[a], t, a)
        ctx.save_for_backward(v, *kernels)
        return t.view(v.shape)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        v, *kernels = ctx.saved_tensors
        bh, d = v.shape[0] * v.shape[1], len(kernels)
        ks = [k.reshape(bh, *k.shape[2:]).contiguous() for k in kernels]
        inputs = [v.reshape(bh, *v.shape[2:]).contiguous()]  # the input of the product along d-1, d-2, ..
        for a in range(d - 1, 0, -1):
            inputs.append(_mode_product(ks[a], inputs[-1], a))
        g = grad_out.reshape(inputs[0].shape).contiguous()
        grads: list[Tensor] = [torch.empty(0)] * d
        for a in range(d):
            grads[a] = _kernel_grad(g, inputs[d - 1 - a], a).view(kernels[a].shape).to(kernels[a].dtype)
            g = _mode_product(ks[a].transpose(1, 2), g, a)
        return (g.view(v.shape).to(v.dtype), *grads)


def axial_apply(v: Tensor, kernels: list[Tensor], backend: str = "auto") -> Tensor:
    """The factorized kernel application; "auto" runs the einsum chain (faster than the Triton kernel on the H200)."""
    check_shapes(v, kernels)
    if resolve_backend(backend, v, "factorized_attention") == "reference":
        return axial_apply_reference(v, kernels)
    return _AxialApply.apply(v, *kernels)
