"""Batched 2D incompressible Navier-Stokes on a uniform staggered (MAC) grid, projection method.

    du/dt + (u . grad) u = -grad p + nu lap u,    div u = 0

Second order in space (central differences of the conservative fluxes on the MAC grid),
SSP-RK2 (Heun) in time with a pressure projection after each stage, so that every stage is
divergence-free to the accuracy of the Poisson solve. The pressure Poisson equation is
solved exactly by diagonalization (`PoissonSolver`). Each `step` advances by the record
interval `dt` in sub-steps bounded by the advective CFL number and the explicit viscous
limit, computed from the current flow, so a too large `dt` cannot make it unstable.

Boundaries, per side (x_low, x_high, y_low, y_high):
    wall      no slip; the tangential wall speed is `tangential * velocity` (a moving lid)
    inflow    normal velocity `profile(s) * velocity` (s in [0, 1] along the side), no tangential
    outflow   zero normal gradient of both components, pressure 0

Shapes:
    fields  (B, 2, NX + 1, NY + 1): channel 0 holds u on the x-faces (NX + 1, NY), channel 1
            v on the y-faces (NX, NY + 1), each padded by one zero row/column so that they
            stack; `cell_velocity` gives (B, 2, NX, NY) at cell centres.
    params  (B, 2): the velocity scale (lid or mean inflow speed) and the kinematic viscosity.
    mask    (B, 1, NX + 1, NY + 1) or None: 1 in fluid cells, 0 in solid cells (obstacles), in
            the first NX x NY entries. Faces touching a solid cell carry no velocity (a
            staircase no-slip body); the pressure equation is then solved by conjugate
            gradients on the fluid cells, preconditioned by the fast solver of the empty box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from surrogate.errors import InputError
from surrogate.fields import GridState, check_finite
from surrogate.solvers.poisson import PoissonSolver
from surrogate.stepper import AbstractStepper

FIELD_NAMES = ("u_face", "v_face")
PARAM_NAMES = ("velocity", "viscosity")
SIDES = ("x_low", "x_high", "y_low", "y_high")


def uniform(s: Tensor) -> Tensor:
    return torch.ones_like(s)


def parabolic(s: Tensor) -> Tensor:
    """Poiseuille inflow with mean 1: 6 s (1 - s)."""
    return 6 * s * (1 - s)


@dataclass(frozen=True)
class Side:
    """Boundary condition of one side of the rectangle."""

    kind: str = "wall"
    tangential: float = 0.0
    profile: Callable[[Tensor], Tensor] = uniform

    def __post_init__(self) -> None:
        if self.kind not in ("wall", "inflow", "outflow"):
            raise InputError(f"boundary kind {self.kind!r}: expected wall, inflow or outflow")


class Incompressible2D(AbstractStepper):
    """MAC-grid projection solver on [0, lx] x [0, ly], B simulations advanced together."""

    def __init__(
        self,
        nx: int,
        ny: int,
        lx: float = 1.0,
        ly: float = 1.0,
        sides: dict[str, Side] | None = None,
        dt: float = 0.1,
        cfl: float = 0.5,
        max_substep: float = 1e-2,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        if nx < 4 or ny < 4:
            raise InputError(f"Incompressible2D: need at least 4 x 4 cells, got {nx} x {ny}")
        sides = {**{s: Side() for s in SIDES}, **(sides or {})}
        unknown = set(sides) - set(SIDES)
        if unknown:
            raise InputError(f"boundary sides {sorted(unknown)}: expected {SIDES}")
        if sides["y_low"].kind != "wall" or sides["y_high"].kind != "wall":
            raise InputError("Incompressible2D: the y sides must be walls (inflow/outflow go on the x sides)")
        self.nx, self.ny, self.lx, self.ly = nx, ny, lx, ly
        self.dx, self.dy = lx / nx, ly / ny
        self.sides, self.dt, self.cfl, self.max_substep = sides, dt, cfl, max_substep
        self.dtype, self.device = dtype, torch.device(device)
        pbc = tuple("dirichlet" if sides[s].kind == "outflow" else "neumann" for s in SIDES)
        self.poisson = PoissonSolver(nx, ny, self.dx, self.dy, pbc, dtype, self.device)  # type: ignore[arg-type]
        self.y_c = (torch.arange(ny, dtype=dtype, device=self.device) + 0.5) / ny  # fraction along x sides

    # ---- state packing -------------------------------------------------------------------
    def pack(self, u: Tensor, v: Tensor) -> Tensor:
        """(B, NX+1, NY) and (B, NX, NY+1) -> (B, 2, NX+1, NY+1)."""
        b = u.shape[0]
        out = u.new_zeros(b, 2, self.nx + 1, self.ny + 1)
        out[:, 0, :, : self.ny] = u
        out[:, 1, : self.nx, :] = v
        return out

    def unpack(self, fields: Tensor) -> tuple[Tensor, Tensor]:
        return fields[:, 0, :, : self.ny], fields[:, 1, : self.nx, :]

    def cell_velocity(self, state: GridState) -> Tensor:
        """Velocity at cell centres, (B, 2, NX, NY)."""
        u, v = self.unpack(state.fields)
        return torch.stack([0.5 * (u[:, 1:] + u[:, :-1]), 0.5 * (v[:, :, 1:] + v[:, :, :-1])], dim=1)

    def init(self, velocity: Tensor | float, viscosity: Tensor | float, batch: int = 1, solid: Tensor | None = None) -> GridState:
        """Fluid at rest (boundary values applied) for velocity scales and viscosities (B,).

        `solid` (B, NX, NY) marks obstacle cells (True / 1 = solid).
        """
        vel = torch.as_tensor(velocity, dtype=self.dtype, device=self.device).reshape(-1)
        nu = torch.as_tensor(viscosity, dtype=self.dtype, device=self.device).reshape(-1)
        b = max(batch, vel.numel(), nu.numel())
        vel, nu = vel.expand(b).clone(), nu.expand(b).clone()
        if bool((nu <= 0).any()):
            raise InputError(f"Incompressible2D: viscosity must be positive, got {nu.tolist()}")
        u = torch.zeros(b, self.nx + 1, self.ny, dtype=self.dtype, device=self.device)
        v = torch.zeros(b, self.nx, self.ny + 1, dtype=self.dtype, device=self.device)
        u, v = self._boundary_values(u, v, vel)
        t = torch.zeros(b, dtype=self.dtype, device=self.device)
        mask = None
        if solid is not None:
            if solid.shape != (b, self.nx, self.ny):
                raise InputError(f"Incompressible2D.init solid: expected shape {(b, self.nx, self.ny)}, got {tuple(solid.shape)}")
            mask = torch.ones(b, 1, self.nx + 1, self.ny + 1, dtype=self.dtype, device=self.device)
            mask[:, 0, : self.nx, : self.ny] = 1.0 - solid.to(self.dtype)
            ox, oy = self.openness(mask)
            u, v = u * ox, v * oy
        return GridState(self.pack(u, v), t, torch.stack([vel, nu], 1), FIELD_NAMES, PARAM_NAMES, mask=mask)

    def openness(self, mask: Tensor) -> tuple[Tensor, Tensor]:
        """1 on faces between two fluid cells (or a fluid cell and the boundary), else 0."""
        fluid = mask[:, 0, : self.nx, : self.ny]
        ox = torch.ones(fluid.shape[0], self.nx + 1, self.ny, dtype=fluid.dtype, device=fluid.device)
        ox[:, 1:-1] = fluid[:, 1:] * fluid[:, :-1]
        ox[:, 0], ox[:, -1] = fluid[:, 0], fluid[:, -1]
        oy = torch.ones(fluid.shape[0], self.nx, self.ny + 1, dtype=fluid.dtype, device=fluid.device)
        oy[:, :, 1:-1] = fluid[:, :, 1:] * fluid[:, :, :-1]
        oy[:, :, 0], oy[:, :, -1] = fluid[:, :, 0], fluid[:, :, -1]
        return ox, oy

    # ---- discretization ------------------------------------------------------------------
    def _boundary_values(self, u: Tensor, v: Tensor, vel: Tensor) -> tuple[Tensor, Tensor]:
        """Normal velocities on the boundary faces."""
        u, v = u.clone(), v.clone()
        for side, idx, inner in (("x_low", 0, 1), ("x_high", -1, -2)):
            s = self.sides[side]
            if s.kind == "inflow":
                sign = 1.0 if side == "x_low" else -1.0
                u[:, idx] = sign * vel[:, None] * s.profile(self.y_c)[None]
            elif s.kind == "outflow":
                u[:, idx] = u[:, inner]
            else:
                u[:, idx] = 0.0
        v[:, :, 0] = 0.0
        v[:, :, -1] = 0.0
        return u, v

    def _ghosts(self, u: Tensor, v: Tensor, vel: Tensor) -> tuple[Tensor, Tensor]:
        """u with ghost rows in y (B, NX+1, NY+2); v with ghost columns in x (B, NX+2, NY+1)."""
        lo, hi = self.sides["y_low"], self.sides["y_high"]
        u_lo = 2 * lo.tangential * vel[:, None] - u[:, :, 0]
        u_hi = 2 * hi.tangential * vel[:, None] - u[:, :, -1]
        u_ext = torch.cat([u_lo[:, :, None], u, u_hi[:, :, None]], dim=2)
        ghosts = []
        for side, idx in (("x_low", 0), ("x_high", -1)):
            s = self.sides[side]
            if s.kind == "outflow":
                ghosts.append(v[:, idx])
            else:
                ghosts.append(2 * s.tangential * vel[:, None] - v[:, idx])
        v_ext = torch.cat([ghosts[0][:, None], v, ghosts[1][:, None]], dim=1)
        return u_ext, v_ext

    def _tendency(self, u: Tensor, v: Tensor, vel: Tensor, nu: Tensor) -> tuple[Tensor, Tensor]:
        """-div(u u) + nu lap u on interior faces: (B, NX-1, NY) for u, (B, NX, NY-1) for v."""
        dx, dy = self.dx, self.dy
        u_ext, v_ext = self._ghosts(u, v, vel)
        u_corner = 0.5 * (u_ext[:, :, 1:] + u_ext[:, :, :-1])  # (B, NX+1, NY+1)
        v_corner = 0.5 * (v_ext[:, 1:] + v_ext[:, :-1])  # (B, NX+1, NY+1)
        uv = u_corner * v_corner
        uc = 0.5 * (u[:, 1:] + u[:, :-1])  # (B, NX, NY) cell centres
        vc = 0.5 * (v[:, :, 1:] + v[:, :, :-1])
        nu_ = nu[:, None, None]
        adv_u = (uc[:, 1:] ** 2 - uc[:, :-1] ** 2) / dx + (uv[:, 1:-1, 1:] - uv[:, 1:-1, :-1]) / dy
        lap_u = (u[:, 2:] - 2 * u[:, 1:-1] + u[:, :-2]) / dx**2 + (
            u_ext[:, 1:-1, 2:] - 2 * u_ext[:, 1:-1, 1:-1] + u_ext[:, 1:-1, :-2]
        ) / dy**2
        adv_v = (uv[:, 1:, 1:-1] - uv[:, :-1, 1:-1]) / dx + (vc[:, :, 1:] ** 2 - vc[:, :, :-1] ** 2) / dy
        lap_v = (v_ext[:, 2:, 1:-1] - 2 * v_ext[:, 1:-1, 1:-1] + v_ext[:, :-2, 1:-1]) / dx**2 + (
            v[:, :, 2:] - 2 * v[:, :, 1:-1] + v[:, :, :-2]
        ) / dy**2
        return -adv_u + nu_ * lap_u, -adv_v + nu_ * lap_v

    def divergence(self, u: Tensor, v: Tensor) -> Tensor:
        """Discrete divergence per cell, (B, NX, NY)."""
        return (u[:, 1:] - u[:, :-1]) / self.dx + (v[:, :, 1:] - v[:, :, :-1]) / self.dy

    def _gradient(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        """Gradient of a cell field on the faces: (B, NX+1, NY) and (B, NX, NY+1).

        Wall and inflow faces get none (Neumann); outflow faces carry p = 0, so the gradient
        across their half cell is -2 phi / dx.
        """
        gx = phi.new_zeros(phi.shape[0], self.nx + 1, self.ny)
        gy = phi.new_zeros(phi.shape[0], self.nx, self.ny + 1)
        gx[:, 1:-1] = (phi[:, 1:] - phi[:, :-1]) / self.dx
        gy[:, :, 1:-1] = (phi[:, :, 1:] - phi[:, :, :-1]) / self.dy
        if self.sides["x_high"].kind == "outflow":
            gx[:, -1] = -2 * phi[:, -1] / self.dx
        if self.sides["x_low"].kind == "outflow":
            gx[:, 0] = 2 * phi[:, 0] / self.dx
        return gx, gy

    def _project(self, u: Tensor, v: Tensor, faces: tuple[Tensor, Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Remove the gradient part: solve div(grad phi) = div u, then u -= grad phi.

        `faces` = (open x-faces, open y-faces, fluid cells) of a state with obstacles.
        """
        phi = self._potential(u, v, faces)  # (B, NX, NY)
        gx, gy = self._gradient(phi)
        if faces is None:
            return u - gx, v - gy
        ox, oy, _ = faces
        return u * ox - ox * gx, v * oy - oy * gy

    def _potential(self, u: Tensor, v: Tensor, faces: tuple[Tensor, Tensor, Tensor] | None) -> Tensor:
        """phi with div(grad phi) = div u on the fluid cells, (B, NX, NY)."""
        if faces is None:
            return self.poisson.solve(self.divergence(u, v))
        ox, oy, fluid = faces
        return self._masked_solve(self.divergence(u * ox, v * oy), ox, oy, fluid)

    def pressure(self, state: GridState) -> Tensor:
        """Kinematic pressure p / rho at the cell centres (B, NX, NY), 0 in solid cells.

        The projection makes the velocity update u + h F(u) - grad phi; in a steady state
        the update vanishes, so grad(phi / h) = F(u) is the momentum balance's pressure
        gradient, and p = phi / h (with p = 0 on the outflow, or mean 0 without one).
        """
        u, v = self.unpack(state.fields)
        vel, nu = state.params[:, 0], state.params[:, 1]
        faces = None if state.mask is None else (*self.openness(state.mask), state.mask[:, 0, : self.nx, : self.ny])
        h = self.substep_size(u, v, nu)
        return self._potential(*self._predict(u, v, vel, nu, h), faces) / h

    def _masked_solve(self, rhs: Tensor, ox: Tensor, oy: Tensor, fluid: Tensor, tol: float = 1e-11) -> Tensor:
        """Preconditioned CG for div(open * grad phi) = rhs on the fluid cells (phi = 0 in solids)."""

        def neg_lap(p: Tensor) -> Tensor:
            gx, gy = self._gradient(p * fluid)
            return -self.divergence(ox * gx, oy * gy) * fluid + (1 - fluid) * p

        b = -rhs * fluid
        neumann_only = all(self.sides[s].kind != "outflow" for s in SIDES)

        def remove_mean(r: Tensor) -> Tensor:
            if not neumann_only:
                return r
            mean = (r * fluid).sum((1, 2), keepdim=True) / fluid.sum((1, 2), keepdim=True)
            return (r - mean) * fluid

        b = remove_mean(b)
        x = torch.zeros_like(b)
        r = b.clone()
        z = remove_mean(self.poisson.solve(-r * fluid) * fluid) + (1 - fluid) * r
        p = z.clone()
        rz = (r * z).sum((1, 2))
        scale = b.abs().amax((1, 2)).clamp_min(1e-300)
        for _ in range(500):
            ap = neg_lap(p)
            alpha = rz / (p * ap).sum((1, 2)).clamp_min(1e-300)
            x = x + alpha[:, None, None] * p
            r = r - alpha[:, None, None] * ap
            if bool((r.abs().amax((1, 2)) <= tol * scale).all()):
                break
            z = remove_mean(self.poisson.solve(-r * fluid) * fluid) + (1 - fluid) * r
            rz_new = (r * z).sum((1, 2))
            p = z + (rz_new / rz.clamp_min(1e-300))[:, None, None] * p
            rz = rz_new
        else:
            raise FloatingPointError("Incompressible2D: the pressure solve did not converge in 500 iterations")
        return x * fluid

    def _stage(
        self, u: Tensor, v: Tensor, vel: Tensor, nu: Tensor, h: float, faces: tuple[Tensor, Tensor, Tensor] | None
    ) -> tuple[Tensor, Tensor]:
        """Forward Euler stage of size h followed by boundary values and projection."""
        return self._project(*self._predict(u, v, vel, nu, h), faces)

    def _predict(self, u: Tensor, v: Tensor, vel: Tensor, nu: Tensor, h: float) -> tuple[Tensor, Tensor]:
        """u + h F(u) with the boundary values, before projection."""
        fu, fv = self._tendency(u, v, vel, nu)
        u, v = u.clone(), v.clone()
        u[:, 1:-1] += h * fu
        v[:, :, 1:-1] += h * fv
        return self._boundary_values(u, v, vel)

    def substep_size(self, u: Tensor, v: Tensor, nu: Tensor) -> float:
        umax = max(float(u.abs().max()), float(v.abs().max()), 1e-12)
        h_adv = self.cfl * min(self.dx, self.dy) / umax
        h_visc = 0.2 * min(self.dx, self.dy) ** 2 / float(nu.max())
        return min(h_adv, h_visc, self.max_substep)

    def step(self, state: GridState) -> GridState:
        u, v = self.unpack(state.fields)
        vel, nu = state.params[:, 0], state.params[:, 1]
        faces = None if state.mask is None else (*self.openness(state.mask), state.mask[:, 0, : self.nx, : self.ny])
        t, t_end = 0.0, self.dt
        while t < t_end - 1e-12:
            h = min(self.substep_size(u, v, nu), t_end - t)
            u1, v1 = self._stage(u, v, vel, nu, h, faces)
            u2, v2 = self._stage(u1, v1, vel, nu, h, faces)
            u, v = 0.5 * (u + u2), 0.5 * (v + v2)  # SSP-RK2; the average of projected fields is projected
            t += h
        fields = self.pack(u, v)
        check_finite(fields, f"Incompressible2D.step at t={float(state.time.max()) + self.dt:.4g}")
        return state.evolve(fields, state.time + self.dt)


def lid_driven_cavity(n: int, width: float = 1.0, height: float = 1.0, **kwargs: float) -> Incompressible2D:
    """Square (or rectangular) cavity with a lid moving at `velocity` along +x."""
    nx = max(4, round(n * width / max(width, height)))
    ny = max(4, round(n * height / max(width, height)))
    return Incompressible2D(nx, ny, width, height, {"y_high": Side("wall", tangential=1.0)}, **kwargs)  # type: ignore[arg-type]


def channel(
    nx: int, ny: int, length: float, height: float, profile: Callable[[Tensor], Tensor] = uniform, **kwargs: float
) -> Incompressible2D:
    """Channel with inflow on the left, outflow on the right, walls top and bottom."""
    sides = {"x_low": Side("inflow", profile=profile), "x_high": Side("outflow")}
    return Incompressible2D(nx, ny, length, height, sides, **kwargs)  # type: ignore[arg-type]


def centreline_profiles(solver: Incompressible2D, state: GridState) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Ghia's profiles: u along x = lx/2 at y_c, v along y = ly/2 at x_c (needs even NX, NY).

    Returns (y, u(B, NY + 2), x, v(B, NX + 2)) including the wall values at both ends.
    """
    if solver.nx % 2 or solver.ny % 2:
        raise InputError("centreline_profiles: NX and NY must be even")
    u, v = solver.unpack(state.fields)
    vel = state.params[:, 0]
    u_mid = u[:, solver.nx // 2]  # (B, NY) at y = (j + 1/2) dy
    v_mid = v[:, :, solver.ny // 2]  # (B, NX)
    top = solver.sides["y_high"].tangential * vel[:, None]
    bottom = solver.sides["y_low"].tangential * vel[:, None]
    y = torch.cat([torch.zeros(1), (torch.arange(solver.ny) + 0.5) * solver.dy, torch.tensor([solver.ly])]).to(u)
    x = torch.cat([torch.zeros(1), (torch.arange(solver.nx) + 0.5) * solver.dx, torch.tensor([solver.lx])]).to(u)
    zeros = torch.zeros_like(v_mid[:, :1])
    return y, torch.cat([bottom, u_mid, top], 1), x, torch.cat([zeros, v_mid, zeros], 1)


def interp(xq: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Linear interpolation of y(x) (B, N) at the points xq (M,), x increasing."""
    idx = torch.searchsorted(x, xq).clamp(1, len(x) - 1)
    x0, x1 = x[idx - 1], x[idx]
    w = (xq - x0) / (x1 - x0)
    return y[:, idx - 1] * (1 - w) + y[:, idx] * w
