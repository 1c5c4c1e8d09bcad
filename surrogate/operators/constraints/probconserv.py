"""ProbConserv (Hansen et al. 2023): a Bayesian update that makes a Gaussian prediction satisfy
a linear conservation constraint G u = b, exactly when sigma_G = 0.

    mu~    = mu - Sigma G^T (sigma_G^2 I + G Sigma G^T)^-1 (G mu - b)
    Sigma~ = Sigma - Sigma G^T (sigma_G^2 I + G Sigma G^T)^-1 G Sigma

Sigma is diagonal, or diagonal plus low rank (D + L L^T), so that nothing N x N is formed
unless asked for. b is what physics knows without the solution: for the integral of a
conserved u, the initial mass plus the time integral of the boundary fluxes
(`conservation_rhs`; stores carry that inflow, `GridStore.boundary_inflow`), never the
integral of the target itself. The update runs in float64: with sigma_G = 0 the constrained mean is then
at round-off from the constraint. G comes from the integral form of the conservation law:
quadrature weights on a grid or cell volumes on a mesh, one row per constraint.

Shapes:
    mu, var   (B, N)       mean and diagonal of Sigma (the prediction flattened)
    low_rank  (B, N, R)    optional L of Sigma = diag(var) + L L^T
    G         (M, N) or (B, M, N)
    b         (B, M)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from surrogate.errors import InputError


@dataclass(frozen=True)
class ConstrainedGaussian:
    """The update's result: mean, marginal variances and (when asked) the full covariance."""

    mean: Tensor
    var: Tensor
    cov: Tensor | None = None


def integral_constraint(weights: Tensor, groups: int = 1) -> Tensor:
    """G for "the integral of each of `groups` consecutive blocks equals b".

    `weights` (N // groups,) are quadrature weights of one block (cell volumes, trapezoid
    weights); e.g. one constraint per time slice of a (T, X) space-time prediction.
    Returns G (groups, groups * len(weights)).
    """
    w = weights.reshape(-1)
    g = torch.zeros(groups, groups * w.numel(), dtype=w.dtype, device=w.device)
    for i in range(groups):
        g[i, i * w.numel() : (i + 1) * w.numel()] = w
    return g


def conservation_rhs(u0: Tensor, weights: Tensor, inflow: Tensor) -> Tensor:
    """b (B, T) of "the integral of u(t) is b(t)": the initial integral, sum_i w_i u0_i, plus the
    amount that entered through the boundaries by each time, inflow (B, T). u0 (B, *space),
    weights (*space) quadrature weights (cell volumes). float64."""
    if u0.shape[1:] != weights.shape or inflow.ndim != 2 or inflow.shape[0] != u0.shape[0]:
        raise InputError(
            f"conservation_rhs: u0 (B, *space) {tuple(u0.shape)}, weights (*space) {tuple(weights.shape)} and inflow (B, T) "
            f"{tuple(inflow.shape)} do not match"
        )
    mass0 = (u0.double() * weights.double()).flatten(1).sum(1)
    return mass0[:, None] + inflow.double()


def probconserv_update(
    mu: Tensor,
    var: Tensor,
    g: Tensor,
    b: Tensor,
    sigma_g: float = 0.0,
    low_rank: Tensor | None = None,
    full_cov: bool = False,
) -> ConstrainedGaussian:
    """Condition N(mu, Sigma) on G u = b + N(0, sigma_g^2 I). See the module docstring for shapes."""
    if mu.ndim != 2 or var.shape != mu.shape:
        raise InputError(f"ProbConserv: mean and variance must both be (B, N), got {tuple(mu.shape)} and {tuple(var.shape)}")
    bsz, n = mu.shape
    g = g.expand(bsz, *g.shape) if g.ndim == 2 else g
    if g.ndim != 3 or g.shape[0] != bsz or g.shape[2] != n:
        raise InputError(f"ProbConserv: G must be (M, {n}) or ({bsz}, M, {n}) to match the prediction, got {tuple(g.shape)}")
    m = g.shape[1]
    if b.shape != (bsz, m):
        raise InputError(f"ProbConserv: b must be ({bsz}, {m}), got {tuple(b.shape)}")
    if bool((var < 0).any()):
        raise InputError("ProbConserv: negative variances in the prediction")
    dt = mu.dtype
    mu64, var64, g64, b64 = (x.double() for x in (mu, var, g, b))
    sg_t = var64[:, :, None] * g64.transpose(1, 2)  # Sigma G^T, (B, N, M)
    if low_rank is not None:
        if low_rank.shape[:2] != (bsz, n):
            raise InputError(f"ProbConserv: low-rank factor must be ({bsz}, {n}, R), got {tuple(low_rank.shape)}")
        l64 = low_rank.double()
        sg_t = sg_t + l64 @ (l64.transpose(1, 2) @ g64.transpose(1, 2))
    s = g64 @ sg_t + sigma_g**2 * torch.eye(m, dtype=torch.float64, device=mu.device)  # (B, M, M)
    chol, info = torch.linalg.cholesky_ex(s)
    scale = s.diagonal(dim1=1, dim2=2).abs().amax(1)
    if bool((info > 0).any()) or bool((chol.diagonal(dim1=1, dim2=2).amin(1) ** 2 < 1e-12 * scale).any()):
        raise InputError(
            "ProbConserv: sigma_G^2 I + G Sigma G^T is singular (rank-deficient constraints, or zero variance where "
            "the constraint acts); use sigma_g > 0 or remove dependent rows of G"
        )
    resid = (g64 @ mu64[:, :, None])[:, :, 0] - b64  # (B, M)
    gain = torch.cholesky_solve(sg_t.transpose(1, 2), chol)  # S^-1 G Sigma, (B, M, N)
    mean = mu64 - (gain.transpose(1, 2) @ resid[:, :, None])[:, :, 0]
    prior_var = var64 + (low_rank.double().square().sum(-1) if low_rank is not None else 0.0)
    new_var = prior_var - (sg_t * gain.transpose(1, 2)).sum(-1)
    cov = None
    if full_cov:
        prior = torch.diag_embed(var64)
        if low_rank is not None:
            prior = prior + low_rank.double() @ low_rank.double().transpose(1, 2)
        cov = (prior - sg_t @ gain).to(dt)
    return ConstrainedGaussian(mean.to(dt), new_var.clamp_min(0).to(dt), cov)


def hard_projection(mu: Tensor, g: Tensor, b: Tensor) -> Tensor:
    """The baseline that ignores the variance: the least-squares projection of mu onto G u = b."""
    ones = torch.ones_like(mu)
    return probconserv_update(mu, ones, g, b).mean


def gaussian_nll(mean: Tensor, var: Tensor, target: Tensor) -> Tensor:
    """Mean negative log-likelihood of `target` under independent N(mean, var) (B, N) -> (B,)."""
    v = var.clamp_min(1e-12)
    return 0.5 * ((target - mean).square() / v + torch.log(2 * torch.pi * v)).mean(-1)


class ProbConserv(torch.nn.Module):
    """Wraps a probabilistic operator (output: means then log variances, as `GaussianFNO`)
    and conditions its prediction on G u = b, u being the output flattened per sample.

    Shapes: forward(x (B, C_in, *space), params (B, P), g (M, N) or (B, M, N), b (B, M))
            -> ConstrainedGaussian with mean, var (B, C_out, *space) in float64, so that the
            constraint holds to float64 round-off whatever the operator's precision.
    """

    def __init__(self, operator: torch.nn.Module, sigma_g: float = 0.0) -> None:
        super().__init__()
        self.operator, self.sigma_g = operator, sigma_g

    def forward(self, x: Tensor, params: Tensor, g: Tensor, b: Tensor, mask: Tensor | None = None) -> ConstrainedGaussian:
        out = self.operator(x, params, mask)
        c = out.shape[1] // 2
        mean, var = out[:, :c].double(), out[:, c:].double().clamp(-20, 10).exp()
        shape = mean.shape
        post = probconserv_update(mean.flatten(1), var.flatten(1), g, b, self.sigma_g)
        return ConstrainedGaussian(post.mean.view(shape), post.var.view(shape))
