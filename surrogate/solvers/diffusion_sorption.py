"""1D diffusion-sorption, u_t = D / R(u) u_xx, PDEBench's coefficients (Takamoto et al. 2022).

Water-borne contaminant in soil with a Freundlich sorption isotherm:

    R(u) = 1 + (1 - phi) / phi * rho_s * k_f * n_f * u^(n_f - 1),

D = 5e-4, phi = 0.29, rho_s = 2880, k_f = 3.5e-4, n_f = 0.874, x in [0, 1], t in [0, 500].
u^(n_f - 1) is singular at u = 0; it is evaluated at the smooth positive part
(u + sqrt(u^2 + eps^2)) / 2, eps = 1e-2, here and in the hard-constraint residual alike.
Boundaries as PDEBench's: u(0, t) = 1 (the source) and, at the outflow end, the Cauchy
condition PDEBench writes u(1, t) = D u_x(1, t). Its simulator (`sim_diff_sorp`, right_BC)
imposes it as the value one spacing past the last node, D (u_{J-2} - u_{J-1}) / h, that is
-D u_x: the sign that makes it an outflow (u = -D u_x >= 0 where u falls towards x = 1;
the written sign would ask for u < 0 there). We follow the simulator. Its continuum limit is
the Robin condition u(1, t) + D u_x(1, t) = 0, reached at first order in h (the value sits
one spacing out).

Discretisation: nodes x_j = j / (J - 1), the second difference with that ghost value, and
explicit Heun sub-steps under the stability bound of the diffusion number (R >= 1).
tests/solvers/test_diffusion_sorption.py checks the discrete steady state exactly and the
convergence to the exact series solution of the linear limit k_f = 0 with the Robin end.

Shapes: fields (B, 1, J) nodal values; params (B, 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from surrogate.errors import InputError
from surrogate.fields import GridState, check_finite
from surrogate.stepper import AbstractStepper


@dataclass(frozen=True)
class SorptionCoefficients:
    """PDEBench's diffusion-sorption coefficients; k_f = 0 is plain diffusion."""

    diffusivity: float = 5e-4
    porosity: float = 0.29
    bulk_density: float = 2880.0
    k_f: float = 3.5e-4
    n_f: float = 0.874
    eps: float = 1e-2

    def retardation(self, u: Tensor) -> Tensor:
        """R(u), elementwise, smooth in u (the clamp keeps it finite and differentiable at u <= 0)."""
        pos = 0.5 * (u + torch.sqrt(u * u + self.eps**2))
        c = (1 - self.porosity) / self.porosity * self.bulk_density * self.k_f * self.n_f
        return 1 + c * pos ** (self.n_f - 1)


def second_difference(u: Tensor, h: float, diffusivity: float) -> Tensor:
    """u_xx at every node of the last axis, linear in u: past the last node PDEBench's Cauchy
    value D (u_{J-2} - u_{J-1}) / h; the first node is Dirichlet and its value is not used by
    the caller. (..., J) -> (..., J)."""
    ghost = diffusivity * (u[..., -2:-1] - u[..., -1:]) / h
    padded = torch.cat([u[..., :1], u, ghost], dim=-1)  # (..., J + 2)
    return (padded[..., :-2] - 2 * u + padded[..., 2:]) / (h * h)


class DiffusionSorption(AbstractStepper):
    """Explicit finite differences for `SorptionCoefficients` on J nodes, output every `dt`.

    Args:
        n_nodes: J, nodes on [0, 1] including both ends.
        dt: output interval (PDEBench records 101 levels on [0, 500]: dt = 5).
        safety: fraction of the explicit stability bound h^2 / (2 D) used per sub-step.
    """

    def __init__(
        self,
        n_nodes: int,
        dt: float,
        coefficients: SorptionCoefficients | None = None,
        safety: float = 0.4,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if n_nodes < 3:
            raise InputError(f"DiffusionSorption n_nodes: expected at least 3, got {n_nodes}")
        if dt <= 0:
            raise InputError(f"DiffusionSorption dt: expected > 0, got {dt}")
        self.n_nodes, self.dt, self.dtype = n_nodes, dt, dtype
        self.coef = coefficients or SorptionCoefficients()
        self.h = 1.0 / (n_nodes - 1)
        self.n_sub = max(1, math.ceil(dt / (safety * self.h**2 / (2 * self.coef.diffusivity))))

    @property
    def x(self) -> Tensor:
        return torch.linspace(0, 1, self.n_nodes, dtype=self.dtype)

    def init(self, u0: Tensor) -> GridState:
        """State from initial values u0 (B, J); the source node is set to its boundary value 1."""
        if u0.ndim != 2 or u0.shape[1] != self.n_nodes:
            raise InputError(f"DiffusionSorption.init: expected u0 (B, {self.n_nodes}), got {tuple(u0.shape)}")
        u = u0.to(self.dtype).clone()
        u[:, 0] = 1.0
        b = u.shape[0]
        return GridState(
            fields=u[:, None],
            time=torch.zeros(b, dtype=self.dtype),
            params=torch.zeros(b, 0, dtype=self.dtype),
            field_names=("concentration",),
        )

    def rate(self, u: Tensor) -> Tensor:
        """du/dt = D / R(u) u_xx, zero at the Dirichlet node. (..., J) -> (..., J)."""
        r = self.coef.diffusivity / self.coef.retardation(u) * second_difference(u, self.h, self.coef.diffusivity)
        return torch.cat([torch.zeros_like(r[..., :1]), r[..., 1:]], dim=-1)

    def step(self, state: GridState) -> GridState:
        u, k = state.fields[:, 0], self.dt / self.n_sub
        for _ in range(self.n_sub):
            k1 = self.rate(u)
            u = u + 0.5 * k * (k1 + self.rate(u + k * k1))
        check_finite(u, f"DiffusionSorption.step at t={float(state.time.max()) + self.dt:.4g}")
        return state.evolve(u[:, None], state.time + self.dt)


def random_initial_condition(batch: int, n_nodes: int, seed: int, modes: int = 4, dtype: torch.dtype = torch.float64) -> Tensor:
    """Smooth random u0 (B, J) in about [0, 0.2]: 0.1 + sum_k a_k cos(k pi x) / k, a_k ~ U(-0.05, 0.05)."""
    gen = torch.Generator().manual_seed(seed)
    a = (torch.rand(batch, modes, 1, generator=gen, dtype=dtype) - 0.5) * 0.1  # (B, K, 1)
    k = torch.arange(1, modes + 1, dtype=dtype)[:, None]  # (K, 1)
    x = torch.linspace(0, 1, n_nodes, dtype=dtype)
    return 0.1 + (a * torch.cos(math.pi * k * x) / k).sum(1)
