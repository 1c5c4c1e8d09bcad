"""The two PDEs of Chalapathi et al.'s benchmarks as `SpacetimePDE`s, discretised on the
grids our solvers write: 1D diffusion-sorption and 2D Navier-Stokes in vorticity form.

Shapes: fields (..., T, *space); u0 (B, *space).
"""

from __future__ import annotations

import torch
from torch import Tensor

from surrogate.operators.constraints.spacetime_pde import SpacetimePDE
from surrogate.solvers.diffusion_sorption import SorptionCoefficients, second_difference
from surrogate.solvers.ns2d import NS2D


class DiffusionSorptionPDE(SpacetimePDE):
    """u_t = D / R(u) u_xx on T time levels x J nodes of [0, 1]; u(0, t) = 1 and PDEBench's
    Cauchy outflow end (see `solvers.diffusion_sorption`), as the solver discretises them."""

    def __init__(self, n_times: int, n_nodes: int, dt: float, coefficients: SorptionCoefficients | None = None) -> None:
        self.grid, self.dt = (n_times, n_nodes), dt
        self.h = 1.0 / (n_nodes - 1)
        self.coef = coefficients or SorptionCoefficients()

    def linear_maps(self, f: Tensor) -> dict[str, Tensor]:
        return {"u": f, "u_xx": second_difference(f, self.h, self.coef.diffusivity)}

    def rate(self, v: dict[str, Tensor]) -> Tensor:
        return self.coef.diffusivity / self.coef.retardation(v["u"]) * v["u_xx"]

    def side_conditions(self, u0: Tensor) -> tuple[Tensor, Tensor]:
        t, j = self.grid
        mask = torch.zeros(t, j, dtype=torch.bool)
        mask[0], mask[:, 0] = True, True
        values = torch.zeros(u0.shape[0], t, j, dtype=u0.dtype, device=u0.device)
        values[:, 0] = u0
        values[:, :, 0] = 1.0
        return mask.to(u0.device), values


class VorticityPDE(SpacetimePDE):
    """w_t = -u . grad w + nu lap w + f, periodic on [0, 1)^2, spectral derivatives of NS2D."""

    def __init__(self, n_times: int, solver: NS2D, viscosity: float) -> None:
        n = solver.resolution
        self.grid, self.dt, self.solver, self.nu = (n_times, n, n), solver.dt, solver, viscosity

    def linear_maps(self, f: Tensor) -> dict[str, Tensor]:
        w_hat = torch.fft.rfft2(f)  # (..., X, Y//2+1)
        u, v = self.solver.velocity(w_hat)
        w_x, w_y = self.solver.gradient(w_hat)
        return {"u": f, "vel_x": u, "vel_y": v, "w_x": w_x, "w_y": w_y, "lap": self.solver.laplacian(w_hat)}

    def rate(self, v: dict[str, Tensor]) -> Tensor:
        return -(v["vel_x"] * v["w_x"] + v["vel_y"] * v["w_y"]) + self.nu * v["lap"]

    def forcing(self) -> Tensor:
        return self.solver.forcing().expand(self.grid).to(torch.float64)

    def side_conditions(self, u0: Tensor) -> tuple[Tensor, Tensor]:
        mask = torch.zeros(self.grid, dtype=torch.bool, device=u0.device)
        mask[0] = True
        values = torch.zeros(u0.shape[0], *self.grid, dtype=u0.dtype, device=u0.device)
        values[:, 0] = u0
        return mask, values
