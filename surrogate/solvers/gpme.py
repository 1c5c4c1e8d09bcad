"""The generalized porous medium equation u_t = d/dx (k(u) du/dx) in ProbConserv's three cases.

Cases and exact solutions as in Hansen et al. (2023), "Learning Physical Models that Can
Respect Conservation Laws":

    heat    k(u) = k (constant)      x in [0, 2 pi) periodic, u0 = sin x,   u = exp(-k t) sin x
    pme     k(u) = u^m               x in [0, 1], u(0, t) = (m t)^(1/m),    u = (m (t - x)_+)^(1/m)
    stefan  k(u) = 1 if u >= u* else 0, x in [0, 1], u(0, t) = 1,
            u = 1 - c1 erf(x / (2 sqrt t)) behind the front x* = alpha sqrt t, 0 ahead of it

The solver is a conservative finite-volume scheme: cell averages, face fluxes
-k_face (u_R - u_L) / dx with k_face the mean of the neighbours' k, Dirichlet values
imposed at half a cell, and the theta-method in time (Crank-Nicolson, theta = 1/2; backward
Euler, theta = 1, for the Stefan case whose k jumps) with Picard iterations on k. For the
Stefan case k is lagged (one Picard pass: linearized backward Euler), because fixed-point
iterations on a step function toggle cells across u* and need not converge. The total
mass changes only by the boundary fluxes, to round-off (`flux_step` returns them).

Observed orders (tests/solvers/test_gpme.py): heat 2 (smooth), porous medium about 1.3
(degenerate front, u ~ (t - x)^(1/m)), Stefan about 1 (moving jump).

Shapes: fields (B, 1, N) cell averages; params (B, 1) = k, m or u* by case.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import erf
from torch import Tensor

from surrogate.errors import InputError
from surrogate.fields import GridState, check_finite
from surrogate.stepper import AbstractStepper

CASES = ("heat", "pme", "stefan")
PARAM_NAME = {"heat": "conductivity", "pme": "degree", "stefan": "u_star"}
GPME_RANGES = {"heat": (1.0, 5.0), "pme": (2.0, 6.0), "stefan": (0.55, 0.7)}  # each case's parameter range in the generated data


def stefan_alpha(u_star: float) -> float:
    """Front speed alpha (x* = alpha sqrt t): root of u* erf(z) z exp(z^2) = (1 - u*) / sqrt(pi), alpha = 2 z."""
    if not 0 < u_star < 1:
        raise InputError(f"Stefan u_star must lie in (0, 1), got {u_star}")
    z = brentq(lambda z: u_star * erf(z) * z * math.exp(z * z) - (1 - u_star) / math.sqrt(math.pi), 1e-12, 10.0)
    return 2 * z


def exact_solution(case: str, x: np.ndarray, t: float, param: float) -> np.ndarray:
    """The exact u(x, t) of `case` with its parameter (k, m or u*)."""
    if case == "heat":
        return np.exp(-param * t) * np.sin(x)
    if case == "pme":
        return (param * np.maximum(t - x, 0.0)) ** (1.0 / param)
    if case == "stefan":
        if t == 0:
            return np.where(x == 0, 1.0, 0.0)
        alpha = stefan_alpha(param)
        c1 = (1 - param) / erf(alpha / 2)
        return np.where(x <= alpha * math.sqrt(t), 1 - c1 * erf(x / (2 * math.sqrt(t))), 0.0)
    raise InputError(f"GPME case {case!r}: expected one of {CASES}")


def exact_mass(case: str, t: float, param: float) -> float:
    """Integral of the exact solution over the domain."""
    if case == "heat":
        return 0.0
    if case == "pme":
        a = 1 + 1 / param
        return param**a / (param + 1) * min(t, 1.0) ** a if t <= 1 else float("nan")
    alpha = stefan_alpha(param)
    c1 = (1 - param) / erf(alpha / 2)
    return 2 * c1 * math.sqrt(t / math.pi)


def stefan_front(u: Tensor, x: Tensor, u_star: Tensor) -> Tensor:
    """Front position: the first cell centre where u drops below u*. Shapes: u (B, N) -> (B,)."""
    below = u < u_star[:, None]
    idx = torch.where(below.any(1), below.float().argmax(1), torch.full_like(below[:, 0], u.shape[1] - 1, dtype=torch.long))
    return x[idx]


class GPME(AbstractStepper):
    """Finite-volume GPME solver for one of `CASES`, B simulations (different parameters) at once.

    Args:
        case: "heat", "pme" or "stefan".
        n_cells: cells of the uniform grid.
        dt: record interval; each `step` advances by `dt` in sub-steps of at most `max_substep`.
        theta: 0.5 Crank-Nicolson, 1.0 backward Euler (default: 1 for Stefan, 0.5 otherwise).
        picard: fixed-point iterations on k(u) per sub-step (default 4; 1 for Stefan).
    """

    def __init__(
        self,
        case: str,
        n_cells: int = 128,
        dt: float = 0.05,
        max_substep: float = 1e-3,
        theta: float | None = None,
        picard: int | None = None,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        if case not in CASES:
            raise InputError(f"GPME case {case!r}: expected one of {CASES}")
        if n_cells < 4 or not dt > 0 or not max_substep > 0:
            raise InputError(f"GPME: need n_cells >= 4, dt > 0, max_substep > 0; got {n_cells}, {dt}, {max_substep}")
        self.case, self.n, self.dt = case, n_cells, dt
        self.picard = picard if picard is not None else (1 if case == "stefan" else 4)
        self.theta = theta if theta is not None else (1.0 if case == "stefan" else 0.5)
        self.n_sub = max(1, math.ceil(dt / max_substep - 1e-9))
        self.dtype, self.device = dtype, torch.device(device)
        self.length = 2 * math.pi if case == "heat" else 1.0
        self.dx = self.length / n_cells
        self.x = (torch.arange(n_cells, dtype=dtype, device=self.device) + 0.5) * self.dx  # cell centres

    def k(self, u: Tensor, p: Tensor) -> Tensor:
        """Diffusivity k(u); u (B, N), p (B, 1)."""
        if self.case == "heat":
            return p.expand_as(u)
        if self.case == "pme":
            return u.clamp_min(0) ** p
        return (u >= p).to(u.dtype)

    def face(self, k_left: Tensor, k_right: Tensor) -> Tensor:
        """Face diffusivity: the mean of the neighbours', or for Stefan their max, so that the
        melted side drives the front (the mean would halve the flux into the front cell)."""
        if self.case == "stefan":
            return torch.maximum(k_left, k_right)
        return 0.5 * (k_left + k_right)

    def boundary(self, t: float, p: Tensor) -> tuple[Tensor, Tensor]:
        """Dirichlet values (B,) at x = 0 and x = 1 (unused for the periodic heat case)."""
        if self.case == "pme":
            return (p[:, 0] * t).clamp_min(0) ** (1 / p[:, 0]), (p[:, 0] * max(t - 1, 0.0)) ** (1 / p[:, 0])
        one = torch.ones_like(p[:, 0])
        return one, torch.zeros_like(one)

    def init(self, params: Tensor | float, batch: int | None = None) -> GridState:
        """Exact initial cell averages for parameters (B,) or a scalar (then `batch` copies)."""
        p = torch.as_tensor(params, dtype=self.dtype, device=self.device).reshape(-1)
        if p.numel() == 1 and batch:
            p = p.expand(batch)
        check_finite(p, f"GPME {self.case} parameters")
        if self.case == "heat" and bool((p <= 0).any()):
            raise InputError(f"GPME heat: conductivity must be positive, got {p.tolist()}")
        if self.case == "pme" and bool((p < 1).any()):
            raise InputError(f"GPME pme: degree m must be >= 1, got {p.tolist()}")
        if self.case == "stefan" and bool(((p <= 0) | (p >= 1)).any()):
            raise InputError(f"GPME stefan: u_star must lie in (0, 1), got {p.tolist()}")
        b = p.shape[0]
        if self.case == "heat":
            # Exact cell averages of sin x.
            u0 = torch.sin(self.x) * (2 * math.sin(self.dx / 2) / self.dx)
        else:
            u0 = torch.zeros(self.n, dtype=self.dtype, device=self.device)
        fields = u0.expand(b, 1, self.n).clone()
        t = torch.zeros(b, dtype=self.dtype, device=self.device)
        return GridState(fields, t, p[:, None].clone(), ("u",), (PARAM_NAME[self.case],))

    def _system(self, u: Tensor, p: Tensor, t: float) -> tuple[Tensor, Tensor, Callable[[Tensor], Tensor]]:
        """The semi-discrete system d/dt u = A u + s with k frozen at `u`.

        Returns A (B, N, N), the boundary source s (B, N) and a function giving the mass that
        enters through the boundaries per unit time for a state v (B, N) -> (B,). Summing
        dx (A v + s) over the cells telescopes to exactly that inflow.
        """
        b, n = u.shape
        kc = self.k(u, p)  # (B, N)
        i = torch.arange(n, device=u.device)
        a = torch.zeros(b, n, n, dtype=u.dtype, device=u.device)
        s = torch.zeros_like(u)
        if self.case == "heat":
            kf = 0.5 * (kc + torch.roll(kc, -1, dims=1)) / self.dx**2  # face i + 1/2, periodic
            a[:, i, (i + 1) % n] += kf
            a[:, (i + 1) % n, i] += kf
            a[:, i, i] -= kf + torch.roll(kf, 1, dims=1)
            return a, s, lambda v: torch.zeros_like(v[:, 0])
        kf = self.face(kc[:, :-1], kc[:, 1:]) / self.dx**2  # (B, N - 1) interior faces
        a[:, i[:-1], i[1:]] = kf
        a[:, i[1:], i[:-1]] = kf
        a[:, i[:-1], i[:-1]] -= kf
        a[:, i[1:], i[1:]] -= kf
        # Dirichlet values at the walls, half a cell from the first and last centres.
        ul, ur = self.boundary(t, p)
        bl = 2 * self.face(self.k(ul[:, None], p)[:, 0], kc[:, 0]) / self.dx**2
        br = 2 * self.face(self.k(ur[:, None], p)[:, 0], kc[:, -1]) / self.dx**2
        a[:, 0, 0] -= bl
        a[:, -1, -1] -= br
        s[:, 0], s[:, -1] = bl * ul, br * ur

        def inflow(v: Tensor) -> Tensor:
            return self.dx * (bl * (ul - v[:, 0]) + br * (ur - v[:, -1]))

        return a, s, inflow

    def flux_step(self, state: GridState) -> tuple[GridState, Tensor]:
        """One record interval; also returns the mass that entered through the boundaries (B,)."""
        u = state.fields[:, 0]
        p = state.params
        t0 = float(state.time[0])
        h = self.dt / self.n_sub
        eye = torch.eye(self.n, dtype=u.dtype, device=u.device)
        inflow_total = torch.zeros_like(u[:, 0])
        th = self.theta
        for j in range(self.n_sub):
            t, t1 = t0 + j * h, t0 + (j + 1) * h
            a0, s0, in0 = self._system(u, p, t)
            explicit = u + (1 - th) * h * (torch.einsum("bij,bj->bi", a0, u) + s0)  # (B, N)
            new = u
            for _ in range(self.picard):  # Picard: k frozen at the latest iterate
                a1, s1, in1 = self._system(new, p, t1)
                new = torch.linalg.solve(eye - th * h * a1, explicit + th * h * s1)
            inflow_total = inflow_total + h * ((1 - th) * in0(u) + th * in1(new))
            u = new
        check_finite(u, f"GPME {self.case} at t={t0 + self.dt:.4g}")
        return state.evolve(u[:, None], state.time + self.dt), inflow_total

    def step(self, state: GridState) -> GridState:
        return self.flux_step(state)[0]
