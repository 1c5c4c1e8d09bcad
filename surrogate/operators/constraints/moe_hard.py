"""Hard constraints by a differentiable least-squares solve per expert (Chalapathi, Du and
Krishnapriyan 2024, "Scaling physics-informed hard constraints with mixture-of-experts").

The wrapped network outputs N basis functions; each of E experts (subdomains of space x
time, batched together) finds the basis weights w that minimize its PDE residual on the
collocation points sampled in its subdomain,

    w* = argmin_w  1/2 |r(w, basis)|^2 + reg/2 |w|^2,

by a batched Levenberg-Marquardt solve. The backward pass does not unroll the iterations: by
the implicit function theorem, with g(w, basis) = d objective / dw = 0 at w*,

    d w* / d basis = -H^-1 dg/d basis,   H = d^2 objective / dw^2 (exact, per expert),

so each expert costs one small N x N solve. K = 1 expert is the global hard constraint.
Experts run batched on one device, or shared out over torch.distributed ranks.

Shapes: the residual function maps w (N,) and the expert's basis tensors (M, N, ...) to (M,);
`solve` takes basis tensors with a leading expert dim E and returns w* (E, N).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import Tensor
from torch.func import grad, hessian, jacfwd, vjp, vmap

from surrogate.errors import InputError

log = logging.getLogger(__name__)
Residual = Callable[..., Tensor]


class ExpertsNotConverged(InputError):
    """An expert's fit did not converge, so its implicit gradient would be wrong."""


def _objective(residual: Residual, reg: float) -> Callable[..., Tensor]:
    def f(w: Tensor, *basis: Tensor) -> Tensor:
        r = residual(w, *basis)
        return 0.5 * (r * r).sum() + 0.5 * reg * (w * w).sum()

    return f


def levenberg_marquardt(
    residual: Residual, w0: Tensor, basis: tuple[Tensor, ...], reg: float, max_iter: int, tol: float
) -> tuple[Tensor, Tensor]:
    """Batched Levenberg-Marquardt over the leading expert dim, on the exact Hessian of the
    objective (J^T J plus the residual-curvature term), so that it converges quadratically
    also where the optimal residual is not zero. Converged: |gradient| <= tol (1 + max_n sum_m
    |J_mn r_m|), tol relative to the terms it sums. Returns w (E, N) and converged flags (E,)."""
    f = vmap(_objective(residual, reg))
    jac = vmap(jacfwd(residual, argnums=0))  # N << M columns: forward mode
    res = vmap(residual)
    hess = vmap(hessian(_objective(residual, reg), argnums=0))
    w = w0.clone()
    lam = torch.full(w.shape[:1], 1e-3, dtype=w.dtype, device=w.device)
    done = torch.zeros(w.shape[0], dtype=torch.bool, device=w.device)
    for _ in range(max_iter):
        r, j = res(w, *basis), jac(w, *basis)  # (E, M), (E, M, N)
        g = (j.transpose(1, 2) @ r[:, :, None])[:, :, 0] + reg * w  # (E, N) gradient of the objective
        scale = (j.abs().transpose(1, 2) @ r.abs()[:, :, None]).amax((1, 2))  # the size of the terms summed into g
        done = g.abs().amax(1) <= tol * (1 + scale)
        if bool(done.all()):
            break
        h = hess(w, *basis)
        damp = (j * j).sum(1) + reg + 1e-12  # diag(J^T J): positive even where the exact Hessian is not
        step = torch.linalg.solve(h + lam[:, None, None] * torch.diag_embed(damp), -g)
        trial = w + step
        f_w = f(w, *basis)
        better = f(trial, *basis) <= f_w + 8 * torch.finfo(w.dtype).eps * f_w.abs()  # near w*, f is flat to round-off
        w = torch.where((better & ~done)[:, None], trial, w)
        lam = torch.where(better, lam / 3, lam * 4)
    return w, done


class _Solve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, residual, reg, max_iter, tol, on_failure, w0, *basis):  # type: ignore[override]
        with torch.no_grad():
            w, done = levenberg_marquardt(residual, w0, basis, reg, max_iter, tol)
        if not bool(done.all()):
            msg = f"Levenberg-Marquardt did not converge for {int((~done).sum())} of {len(done)} experts in {max_iter} iterations"
            if on_failure == "raise":
                raise ExpertsNotConverged(msg + "; raise max_iter, loosen tol, or regularize (reg > 0)")
            log.warning(msg + "; using the last iterate")
        ctx.save_for_backward(w, *basis)
        ctx.residual, ctx.reg = residual, reg
        return w

    @staticmethod
    def backward(ctx, grad_w):  # type: ignore[override]
        w, *basis = ctx.saved_tensors
        f = _objective(ctx.residual, ctx.reg)
        h = vmap(hessian(f, argnums=0))(w, *basis)  # (E, N, N), exact
        v = torch.linalg.solve(h, grad_w)  # (E, N)
        g_of_basis = lambda *b: vmap(grad(f, argnums=0))(w, *b)  # noqa: E731
        _, pullback = vjp(g_of_basis, *basis)
        grads = pullback(-v)
        return (None, None, None, None, None, None, *grads)


class MoEHardConstraint:
    """Per-expert constrained least squares with an implicit-function-theorem backward.

    Args:
        residual: r(w, *basis) -> (M,) for one expert (differentiable in both).
        reg: Tikhonov regularization of the weights (keeps under-determined experts well posed).
        on_failure: "raise" (default) or "warn" when the LM solve does not converge.
    """

    def __init__(self, residual: Residual, reg: float = 0.0, max_iter: int = 100, tol: float = 1e-10, on_failure: str = "raise") -> None:
        if on_failure not in ("raise", "warn"):
            raise InputError(f"on_failure {on_failure!r}: expected raise or warn")
        self.residual, self.reg, self.max_iter, self.tol, self.on_failure = residual, reg, max_iter, tol, on_failure

    def solve(self, *basis: Tensor, w0: Tensor | None = None, distributed: bool = False) -> Tensor:
        """w* (E, N) for basis tensors with a leading expert dim E; differentiable in the basis.

        `distributed`: under torch.distributed every rank solves a contiguous share of the
        experts and the weights are all-gathered (autograd-aware). Every rank must pass the
        same basis; the gradient a rank receives covers its own experts, scaled by the world
        size, so that the usual average of gradients over ranks (DDP) is the full gradient.
        """
        n = basis[0].shape[2] if w0 is None else w0.shape[1]
        if w0 is None:
            w0 = torch.zeros(basis[0].shape[0], n, dtype=basis[0].dtype, device=basis[0].device)
        if not (distributed and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return _Solve.apply(self.residual, self.reg, self.max_iter, self.tol, self.on_failure, w0, *basis)
        rank, world = dist.get_rank(), dist.get_world_size()
        e = w0.shape[0]
        per = -(-e // world)
        own = torch.arange(rank * per, (rank + 1) * per, device=w0.device).clamp(max=e - 1)  # padded with the last expert
        local = _Solve.apply(self.residual, self.reg, self.max_iter, self.tol, self.on_failure, w0[own], *[b[own] for b in basis])
        return torch.cat(dist_nn.all_gather(local))[:e]  # (E, N) in expert order
