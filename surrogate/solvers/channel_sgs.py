"""Sub-grid-scale closures for the channel LES: dynamic Smagorinsky (DSM) and WALE.

Both return an eddy viscosity nu_t at the cell centres from the resolved velocity-gradient
tensor g_ij = d u_i / d x_j; the channel solver adds div(2 nu_t S) to the momentum equation.

- WALE (Nicoud & Ducros 1999): nu_t = (C_w Delta)^2 (Sd:Sd)^(3/2) / ((S:S)^(5/2) + (Sd:Sd)^(5/4)),
  Sd the traceless symmetric part of g^2. nu_t vanishes at walls (as y^3) without damping.
- DSM (Germano et al. 1991, Lilly 1992): nu_t = C(y) Delta^2 |S|, |S| = sqrt(2 S:S), with
  C(y) = <L_ij M_ij> / <M_ij M_ij> averaged over the homogeneous x-z planes and clipped at 0;
  L_ij = hat(u_i u_j) - hat(u_i) hat(u_j), M_ij = 2 Delta^2 (hat(|S| S_ij) - a^2 |hat S| hat S_ij).
  The grid filter of the pseudo-spectral solver is the sharp cutoff of its 2/3-rule
  dealiasing (|k| <= N/3 in x and z); the test filter is the sharp cutoff at half of it
  (|k| <= N/6), as Germano et al. used in their channel, so a = (2 * 2)^(1/3) against
  Delta = (dx dy dz)^(1/3). A flow resolved inside the test cutoff has L = 0, hence C = 0.
  (A 3-point trapezoidal filter on the N-point grid, used before, attenuates even the
  largest scales, cos^2(k dx / 2), so fully resolved gradients fed L and the model
  dissipated well-resolved near-wall turbulence: U+ 12.7% high in the log layer on a grid
  where no model is within 3%.)

Shapes: g (B, 3, 3, Nx, Ny, Nz); velocity (B, 3, Nx, Ny, Nz); delta (Ny,); returns (B, Nx, Ny, Nz).
"""

from __future__ import annotations

import torch
from torch import Tensor

CLOSURES = ("none", "dsm", "wale")
WALE_CW = 0.325
TEST_FILTER_RATIO = 4 ** (1 / 3)


def strain(g: Tensor) -> Tensor:
    """Symmetric part S_ij of the gradient tensor, (B, 3, 3, ...)."""
    return 0.5 * (g + g.transpose(1, 2))


def wale(g: Tensor, delta: Tensor) -> Tensor:
    s = strain(g)
    g2 = torch.einsum("bik...,bkj...->bij...", g, g)
    trace = g2.diagonal(dim1=1, dim2=2).sum(-1)
    sd = strain(g2) - torch.eye(3, dtype=g.dtype, device=g.device).view(1, 3, 3, 1, 1, 1) * trace[:, None, None] / 3
    ss = s.square().sum((1, 2))
    sdsd = sd.square().sum((1, 2))
    d2 = (WALE_CW * delta.view(1, 1, -1, 1)) ** 2
    return d2 * sdsd**1.5 / (ss**2.5 + sdsd**1.25 + 1e-30)


def filter_test_scale(f: Tensor) -> Tensor:
    """Sharp spectral cutoff at |k| <= N/6 over the last-but-two (x) and last (z) axes (periodic)."""
    nx, nz = f.shape[-3], f.shape[-1]
    spec = torch.fft.fft(torch.fft.rfft(f, dim=-1), dim=-3)  # (..., Nx, Ny, Nz // 2 + 1)
    kx = torch.fft.fftfreq(nx, d=1 / nx, device=f.device).abs()
    kz = torch.fft.rfftfreq(nz, d=1 / nz, device=f.device)
    keep = ((kx[:, None, None] <= nx // 6) & (kz[None, None, :] <= nz // 6)).to(spec.dtype)  # (Nx, 1, Nz // 2 + 1)
    return torch.fft.irfft(torch.fft.ifft(spec * keep, dim=-3), n=nz, dim=-1)


def dynamic_smagorinsky(g: Tensor, velocity: Tensor, delta: Tensor) -> Tensor:
    s = strain(g)
    s_norm = (2 * s.square().sum((1, 2))).sqrt()  # (B, Nx, Ny, Nz)
    s_hat = filter_test_scale(s)
    s_hat_norm = (2 * s_hat.square().sum((1, 2))).sqrt()
    u_hat = filter_test_scale(velocity)
    uu = velocity[:, :, None] * velocity[:, None, :]
    lij = filter_test_scale(uu) - u_hat[:, :, None] * u_hat[:, None, :]
    lij = (
        lij - torch.eye(3, dtype=g.dtype, device=g.device).view(1, 3, 3, 1, 1, 1) * lij.diagonal(dim1=1, dim2=2).sum(-1)[:, None, None] / 3
    )
    d2 = delta.view(1, 1, 1, 1, -1, 1) ** 2
    mij = 2 * d2 * (filter_test_scale(s_norm[:, None, None] * s) - TEST_FILTER_RATIO**2 * s_hat_norm[:, None, None] * s_hat)
    num = (lij * mij).sum((1, 2)).mean((1, 3))  # (B, Ny): plane averages
    den = (mij * mij).sum((1, 2)).mean((1, 3))
    coeff = (num / den.clamp_min(1e-30)).clamp_min(0.0)  # Lilly's sign: tau^d = -2 C Delta^2 |S| S
    return coeff[:, None, :, None] * delta.view(1, 1, -1, 1) ** 2 * s_norm


def eddy_viscosity(closure: str, g: Tensor, velocity: Tensor, delta: Tensor) -> Tensor | None:
    """nu_t of the named closure at the cell centres, or None for no model (DNS / implicit LES)."""
    if closure == "wale":
        return wale(g, delta)
    if closure == "dsm":
        return dynamic_smagorinsky(g, velocity, delta)
    return None
