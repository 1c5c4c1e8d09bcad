"""Batched pseudo-spectral solver of 2D incompressible Navier-Stokes, vorticity form.

    dw/dt + u . grad(w) = nu lap(w) + f,    u = (d psi/dy, -d psi/dx),   -lap(psi) = w

on the periodic unit square, as in the FNO Navier-Stokes benchmark (Li et al. 2021).
Time stepping is Crank-Nicolson for viscosity with Heun (explicit RK2) for advection
and forcing: second order overall. The nonlinear term is dealiased with the 2/3 rule.
Each call to `step` advances by the record interval `dt` in as many sub-steps as the
CFL condition needs, so the solver cannot go unstable through a too large `dt`.

Shapes:
    vorticity  (B, 1, X, Y)   w[..., i, j] = w(x_i, y_j), x_i = i / X
    params     (B, 1)         the viscosity nu of each simulation
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from surrogate.errors import InputError
from surrogate.fields import GridState, check_finite
from surrogate.stepper import AbstractStepper

FIELD_NAMES = ("vorticity",)
PARAM_NAMES = ("viscosity",)


def li_forcing(resolution: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Li et al.'s forcing f(x, y) = 0.1 (sin(2 pi (x + y)) + cos(2 pi (x + y))), shape (X, Y)."""
    x = torch.arange(resolution, dtype=dtype) / resolution
    s = 2 * math.pi * (x[:, None] + x[None, :])  # (X, Y)
    return 0.1 * (torch.sin(s) + torch.cos(s))


def gaussian_random_field(
    batch: int,
    resolution: int,
    generator: torch.Generator,
    alpha: float = 2.5,
    tau: float = 7.0,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Samples of N(0, tau^(2 alpha - 2) (-lap + tau^2 I)^(-alpha)) on the periodic unit square.

    The FNO Navier-Stokes initial condition (alpha = 2.5, tau = 7), zero mean.
    Shapes: returns (B, X, Y).
    """
    k = torch.fft.fftfreq(resolution, d=1.0 / resolution, dtype=dtype)  # integer wavenumbers
    k2 = k[:, None] ** 2 + k[None, :] ** 2  # (X, Y)
    sigma = tau ** (0.5 * (2 * alpha - 2))
    # The n^2 undoes ifft2's 1/n^2 so the field's variance is independent of resolution.
    sqrt_eig = resolution**2 * math.sqrt(2.0) * sigma * (4 * math.pi**2 * k2 + tau**2) ** (-alpha / 2)
    sqrt_eig[0, 0] = 0.0
    noise = torch.randn(batch, resolution, resolution, 2, generator=generator, dtype=dtype)
    coeff = torch.complex(noise[..., 0], noise[..., 1]) * sqrt_eig  # (B, X, Y)
    return torch.fft.ifft2(coeff).real


class NS2D(AbstractStepper):
    """Pseudo-spectral 2D Navier-Stokes on [0, 1)^2, B simulations advanced together.

    Args:
        resolution: grid points per side.
        dt: record interval: one `step` advances the physical time by `dt`.
        forcing: (X, Y) forcing term f; Li et al.'s forcing when None.
        cfl: Courant number bound of the explicit sub-steps.
        max_substep: upper bound on the sub-step even when the flow is slow.
    """

    def __init__(
        self,
        resolution: int = 64,
        dt: float = 0.1,
        forcing: Tensor | None = None,
        cfl: float = 0.5,
        max_substep: float = 1e-2,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        if resolution < 8 or resolution % 2:
            raise InputError(f"NS2D resolution: expected an even number >= 8, got {resolution}")
        if not dt > 0 or not max_substep > 0 or not 0 < cfl <= 1:
            raise InputError(f"NS2D: need dt > 0, max_substep > 0, 0 < cfl <= 1; got {dt}, {max_substep}, {cfl}")
        self.resolution, self.dt, self.cfl, self.max_substep = resolution, dt, cfl, max_substep
        self.dtype, self.device = dtype, torch.device(device)
        n = resolution
        kx = torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype, device=self.device)[:, None]  # (X, 1)
        ky = torch.fft.rfftfreq(n, d=1.0 / n, dtype=dtype, device=self.device)[None, :]  # (1, Y//2+1)
        self._ikx = 2j * math.pi * kx
        self._iky = 2j * math.pi * ky
        lap = 4 * math.pi**2 * (kx**2 + ky**2)  # symbol of -lap
        self._neg_lap = lap
        inv = torch.where(lap > 0, 1.0 / torch.where(lap > 0, lap, 1.0), 0.0)
        self._inv_neg_lap = inv  # psi_hat = w_hat / |k|^2, mean mode dropped
        self._dealias = ((kx.abs() <= n / 3) & (ky.abs() <= n / 3)).to(dtype)
        if forcing is None:
            forcing = li_forcing(n, dtype)
        if forcing.shape != (n, n):
            raise InputError(f"NS2D forcing: expected shape ({n}, {n}), got {tuple(forcing.shape)}")
        self._f_hat = torch.fft.rfft2(forcing.to(device=self.device, dtype=dtype))

    def init(self, vorticity: Tensor, viscosity: Tensor | float, time: float = 0.0) -> GridState:
        """State from a vorticity (B, X, Y) or (B, 1, X, Y) and viscosities (B,) or a scalar."""
        w = vorticity.to(device=self.device, dtype=self.dtype)
        if w.ndim == 3:
            w = w[:, None]
        n = self.resolution
        if w.ndim != 4 or w.shape[1:] != (1, n, n):
            raise InputError(f"NS2D.init vorticity: expected (B, {n}, {n}), got {tuple(vorticity.shape)}")
        check_finite(w, "NS2D.init vorticity")
        nu = torch.as_tensor(viscosity, dtype=self.dtype, device=self.device).reshape(-1)
        nu = nu.expand(w.shape[0]) if nu.numel() == 1 else nu
        if nu.shape != (w.shape[0],) or bool((nu <= 0).any()):
            raise InputError(f"NS2D.init viscosity: expected {w.shape[0]} positive values, got {nu.tolist()}")
        t = torch.full((w.shape[0],), time, dtype=self.dtype, device=self.device)
        return GridState(w, t, nu[:, None].clone(), FIELD_NAMES, PARAM_NAMES)

    def init_random(self, batch: int, viscosity: Tensor | float, seed: int) -> GridState:
        """State with Gaussian-random-field vorticity (Li et al.'s initial condition)."""
        gen = torch.Generator().manual_seed(seed)
        w0 = gaussian_random_field(batch, self.resolution, gen, dtype=self.dtype)
        return self.init(w0, viscosity)

    def velocity(self, w_hat: Tensor) -> tuple[Tensor, Tensor]:
        """Velocity (u, v), each (..., X, Y), from the vorticity's rfft2 (..., X, Y//2+1)."""
        psi_hat = w_hat * self._inv_neg_lap
        n = self.resolution
        u = torch.fft.irfft2(self._iky * psi_hat, s=(n, n))
        v = torch.fft.irfft2(-self._ikx * psi_hat, s=(n, n))
        return u, v

    def gradient(self, w_hat: Tensor) -> tuple[Tensor, Tensor]:
        """(w_x, w_y), each (..., X, Y), from an rfft2 (..., X, Y//2+1)."""
        n = self.resolution
        return torch.fft.irfft2(self._ikx * w_hat, s=(n, n)), torch.fft.irfft2(self._iky * w_hat, s=(n, n))

    def laplacian(self, w_hat: Tensor) -> Tensor:
        """lap w (..., X, Y) from an rfft2 (..., X, Y//2+1)."""
        n = self.resolution
        return torch.fft.irfft2(-self._neg_lap * w_hat, s=(n, n))

    def forcing(self) -> Tensor:
        """The forcing f (X, Y)."""
        n = self.resolution
        return torch.fft.irfft2(self._f_hat, s=(n, n))

    def _rhs_explicit(self, w_hat: Tensor) -> Tensor:
        """rfft2 of -u . grad(w) (dealiased) + f."""
        u, v = self.velocity(w_hat)
        wx, wy = self.gradient(w_hat)
        adv = torch.fft.rfft2(u * wx + v * wy)
        return -adv * self._dealias + self._f_hat

    def _substep(self, w_hat: Tensor, nu: Tensor, h: float) -> Tensor:
        """One Crank-Nicolson / Heun step of size h; nu is (B, 1, 1)."""
        damp = 0.5 * h * nu * self._neg_lap
        lhs, rhs_lin = 1.0 + damp, 1.0 - damp
        r1 = self._rhs_explicit(w_hat)
        w_pred = (rhs_lin * w_hat + h * r1) / lhs
        r2 = self._rhs_explicit(w_pred)
        return (rhs_lin * w_hat + 0.5 * h * (r1 + r2)) / lhs

    def n_substeps(self, w_hat: Tensor) -> int:
        """Sub-steps for one record interval: the CFL bound, and at most `max_substep` each."""
        u, v = self.velocity(w_hat)
        umax = float(torch.sqrt(u**2 + v**2).max())
        h_cfl = self.cfl / (self.resolution * max(umax, 1e-12))
        return max(1, math.ceil(self.dt / min(h_cfl, self.max_substep)))

    def step(self, state: GridState) -> GridState:
        w_hat = torch.fft.rfft2(state.fields[:, 0])  # (B, X, Y//2+1)
        nu = state.params[:, 0, None, None]  # (B, 1, 1)
        m = self.n_substeps(w_hat)
        for _ in range(m):
            w_hat = self._substep(w_hat, nu, self.dt / m)
        w = torch.fft.irfft2(w_hat, s=(self.resolution, self.resolution))[:, None]
        check_finite(w, f"NS2D.step at t={float(state.time.max()) + self.dt:.4g} (vorticity)")
        return state.evolve(w, state.time + self.dt)
