"""A time-dependent PDE u_t = F(u) + f on a space-time grid of nodes, as the residual that
physics-informed losses and hard constraints drive to zero.

The residual is the Crank-Nicolson one on every cell (n -> n+1, node j),

    r = u[n+1, j] - u[n, j] - dt/2 (F(u)[n+1, j] + F(u)[n, j] + f[n+1, j] + f[n, j]),

(scaled by dt, so that it is in units of u like the side-condition rows), on the cells whose
upper node is not prescribed, or, in collocation form (the residual Chalapathi et al.
enforce), pointwise at every free node,

    r = dt (u_t[n, j] - F(u)[n, j] - f[n, j]),   u_t by second-order differences along time;
 side conditions (initial values, Dirichlet nodes) are rows
u[node] - value. F is written as a pointwise function `rate` of a few named *linear* images
of the field (`linear_maps`: u itself, differences, a velocity from a stream function), so
that a hard constraint can apply the maps to each basis function once and evaluate the
residual of any weighted sum of them at any subset of cells.

Shapes: fields (B, T, *space); basis (B, N, T, *space); u0 (B, *space).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor
from torch.func import jacrev, vmap

from surrogate.errors import InputError


class SpacetimePDE(ABC):
    """u_t = rate(linear_maps(u)) + forcing on a (T, *space) node grid with side conditions."""

    dt: float
    grid: tuple[int, ...]  # (T, *space)

    @abstractmethod
    def linear_maps(self, f: Tensor) -> dict[str, Tensor]:
        """Named linear images of fields (..., T, *space), each the same shape; "u" is f itself."""

    @abstractmethod
    def rate(self, v: dict[str, Tensor]) -> Tensor:
        """F, pointwise, from the values of the linear maps (any common shape)."""

    @abstractmethod
    def side_conditions(self, u0: Tensor) -> tuple[Tensor, Tensor]:
        """Prescribed nodes: mask (T, *space) bool and values (B, T, *space), from initial values u0."""

    def forcing(self) -> Tensor:
        """f on the grid (T, *space); none by default."""
        return torch.zeros(self.grid, dtype=torch.float64)

    def cell_mask(self) -> Tensor:
        """(T-1, *space) bool: cells n -> n+1 whose upper node is free, where the PDE applies."""
        side, _ = self.side_conditions(torch.zeros(1, *self.grid[1:], dtype=torch.float64))
        return ~side[1:]

    def time_derivative(self, f: Tensor) -> Tensor:
        """d/dt of fields (..., T, *space) by second-order differences (one-sided at the ends)."""
        return torch.gradient(f, spacing=self.dt, dim=f.ndim - len(self.grid), edge_order=2)[0]

    def residuals(self, u: Tensor, u0: Tensor, form: str = "crank-nicolson") -> tuple[Tensor, Tensor]:
        """PDE rows (B, cells or free nodes) and side-condition rows (B, prescribed nodes) of
        fields u (B, T, *space); `form` "crank-nicolson" or "collocation"."""
        f = self.forcing().to(u)
        rate = self.rate(self.linear_maps(u)) + f  # (B, T, *space)
        side, values = self.side_conditions(u0)
        sides = (u - values.to(u))[:, side]
        if form == "collocation":
            return (self.dt * (self.time_derivative(u) - rate))[:, ~side], sides
        if form != "crank-nicolson":
            raise InputError(f"residual form {form!r}: expected collocation or crank-nicolson")
        r = u[:, 1:] - u[:, :-1] - 0.5 * self.dt * (rate[:, 1:] + rate[:, :-1])  # (B, T-1, *space)
        return r[:, self.cell_mask()], sides

    def loss(self, u: Tensor, u0: Tensor, form: str = "crank-nicolson") -> Tensor:
        """The physics-informed loss: mean square of the PDE rows plus that of the side rows."""
        r, s = self.residuals(u, u0, form)
        return r.square().mean() + s.square().mean()

    def solve(self, u0: Tensor, newton_iter: int = 20, tol: float = 1e-12) -> Tensor:
        """The grid's own solution (B, T, *space): every residual row zero, by Newton's method
        level by level. It is the best any constrained model can do on this discretisation."""
        side, values = self.side_conditions(u0)
        f = self.forcing().to(u0)
        space = self.grid[1:]

        def level_residual(new: Tensor, old: Tensor, n: int, vals: Tensor) -> Tensor:  # (S,) each
            pair = torch.stack([old, new]).view(2, *space)
            rate = self.rate(self.linear_maps(pair)).flatten(1) + f[n : n + 2].flatten(1)  # (2, S)
            r = new - old - 0.5 * self.dt * (rate[0] + rate[1])
            fixed = side[n + 1].flatten()
            return torch.where(fixed, new - vals, r)

        jac = vmap(jacrev(level_residual), in_dims=(0, 0, None, 0))
        res = vmap(level_residual, in_dims=(0, 0, None, 0))
        levels = [torch.where(side[0], values[:, 0], u0).flatten(1)]
        for n in range(self.grid[0] - 1):
            old, vals, new = levels[-1], values[:, n + 1].flatten(1), levels[-1].clone()
            for _ in range(newton_iter):
                r = res(new, old, n, vals)
                if float(r.abs().max()) <= tol * (1 + float(new.abs().max())):
                    break
                new = new - torch.linalg.solve(jac(new, old, n, vals), r)
            else:
                raise InputError(
                    f"{type(self).__name__}.solve: Newton did not converge at level {n + 1} "
                    f"(max residual {float(r.abs().max()):.3e}); shorten dt"
                )
            levels.append(new)
        return torch.stack(levels, 1).view(u0.shape[0], *self.grid)
