"""Batched LES/DNS of incompressible channel flow: Fourier in x and z, finite volumes in y.

The channel lies between no-slip walls at y = 0 and y = 2 (half height h = 1), periodic in
the streamwise x (length Lx) and spanwise z (length Lz). Units are h and the friction
velocity u_tau, so nu = 1 / Re_tau and the mean pressure gradient that balances the wall
shear is -dP/dx = 1.

Discretisation:
    x, z  Fourier-Galerkin, 2/3-rule dealiasing (the state keeps only |k| <= N / 3).
    y     second-order finite volumes on a tanh-stretched staggered grid: u, w, p at the
          cell centres y_c (Ny cells), v at the cell faces y_f (Ny + 1, v = 0 on the walls).
          The discrete divergence, gradient and Laplacian are mutually consistent, so the
          projected velocity is divergence-free to round-off.
    time  the low-storage RK3 / Crank-Nicolson scheme of Le & Moin (1991): advection and the
          SGS stress explicit (conservative form), viscosity implicit (one tridiagonal-in-y
          solve per Fourier mode, pre-inverted), one pressure projection per sub-stage.
    drive "pressure": -dP/dx = 1, so Re_tau is exact at equilibrium; "flow_rate": the bulk
          velocity stays at its initial value (params[:, 1]) and Re_tau is an outcome.
    LES   `closure` = "dsm" (dynamic Smagorinsky), "wale" or "none" (DNS / no model); see
          `channel_sgs`.

Each `step` advances by the record interval `dt` in sub-steps re-chosen from the CFL bound as the flow evolves.

Shapes:
    fields  (B, 4, Nx, Ny, Nz)  u, v, w, p at the cell centres (v: mean of the two faces;
                                 the face values are recovered exactly from the wall up)
    params  (B, 2)              re_tau (sets nu = 1 / re_tau), bulk_velocity (flow-rate drive)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from surrogate.errors import InputError
from surrogate.fields import GridState, check_finite
from surrogate.solvers.channel_sgs import CLOSURES, eddy_viscosity
from surrogate.stepper import AbstractStepper

FIELD_NAMES = ("u", "v", "w", "p")
PARAM_NAMES = ("re_tau", "bulk_velocity")
DRIVES = ("pressure", "flow_rate")
# Le & Moin (1991): u_k = u_{k-1} + dt [GAMMA_k N_{k-1} + ZETA_k N_{k-2} + C_k / 2 L (u_k + u_{k-1}) - C_k G p]
GAMMA, ZETA = (8 / 15, 5 / 12, 3 / 4), (0.0, -17 / 60, -5 / 12)
C_STAGE = tuple(g + z for g, z in zip(GAMMA, ZETA))
MAX_FIRST_CELL_Y_PLUS = 2.0
RK3_LIMIT = math.sqrt(3)  # RK3's stability bound on the imaginary axis


@dataclass(frozen=True)
class ChannelGrid:
    """Nx x Ny x Nz cells on [0, lx) x [0, 2] x [0, lz); faces y_f = 1 + tanh(s (2 j / Ny - 1)) / tanh(s)."""

    nx: int = 32
    ny: int = 48
    nz: int = 32
    lx: float = 2 * math.pi
    lz: float = math.pi
    stretch: float = 1.8

    def __post_init__(self) -> None:
        for name in ("nx", "nz"):
            n = getattr(self, name)
            if n < 4 or n % 2:
                raise InputError(f"channel grid {name} = {n}: expected an even number >= 4")
        if self.ny < 4:
            raise InputError(f"channel grid ny = {self.ny}: expected at least 4 cells across the channel")
        if not (self.lx > 0 and self.lz > 0 and self.stretch > 0):
            raise InputError(f"channel grid: need lx, lz, stretch > 0; got {self.lx}, {self.lz}, {self.stretch}")

    def faces(self) -> Tensor:
        j = torch.arange(self.ny + 1, dtype=torch.float64)
        return 1 + torch.tanh(self.stretch * (2 * j / self.ny - 1)) / math.tanh(self.stretch)

    def centres(self) -> Tensor:
        f = self.faces()
        return 0.5 * (f[1:] + f[:-1])

    def x(self) -> Tensor:
        return torch.arange(self.nx, dtype=torch.float64) * self.lx / self.nx

    def z(self) -> Tensor:
        return torch.arange(self.nz, dtype=torch.float64) * self.lz / self.nz

    def check_resolution(self, re_tau: float) -> None:
        """Refuse an Re_tau whose viscous sublayer the wall-normal grid does not resolve."""
        y1 = float(self.centres()[0]) * re_tau
        if y1 > MAX_FIRST_CELL_Y_PLUS:
            ny = self.ny
            while float(ChannelGrid(self.nx, ny, self.nz, self.lx, self.lz, self.stretch).centres()[0]) * re_tau > MAX_FIRST_CELL_Y_PLUS:
                ny += 2
            raise InputError(
                f"Re_tau = {re_tau:g} is beyond what the grid resolves: the first cell centre sits at y+ = {y1:.2f}, "
                f"a wall-resolved LES needs y+ <= {MAX_FIRST_CELL_Y_PLUS:g}; use ny >= {ny} (now {self.ny}) "
                f"or a stronger stretch (now {self.stretch:g}), or a lower Re_tau"
            )


class ChannelSolver(AbstractStepper):
    """B channel simulations (each its own Re_tau) advanced together on one grid.

    Args:
        grid: the mesh.
        dt: record interval: one `step` advances the time by `dt` (in h / u_tau).
        closure: "dsm", "wale" or "none".
        drive: "pressure" or "flow_rate".
        cfl: each sub-step's dt times the largest explicit eigenvalue (|u| kx_max + 2 |v| / dy + |w| kz_max
            and the SGS diffusion), as a fraction of RK3's stability bound.
    """

    def __init__(
        self,
        grid: ChannelGrid,
        dt: float = 0.05,
        closure: str = "dsm",
        drive: str = "pressure",
        cfl: float = 0.5,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        if closure not in CLOSURES:
            raise InputError(f"channel closure {closure!r}: expected one of {CLOSURES}")
        if drive not in DRIVES:
            raise InputError(f"channel drive {drive!r}: expected one of {DRIVES}")
        if not dt > 0 or not 0 < cfl <= 1:
            raise InputError(f"channel solver: need dt > 0 and 0 < cfl <= 1; got dt = {dt}, cfl = {cfl}")
        self.grid, self.dt, self.closure, self.drive, self.cfl = grid, dt, closure, drive, cfl
        self.dtype, self.device = dtype, torch.device(device)
        kw = {"dtype": dtype, "device": self.device}
        g = grid
        self.yf, self.yc = g.faces().to(**kw), g.centres().to(**kw)
        self.h = self.yf[1:] - self.yf[:-1]  # (Ny,) cell heights
        self.d = self.yc[1:] - self.yc[:-1]  # (Ny - 1,) centre spacings (interior faces)
        self.w_lo = (self.yf[1:-1] - self.yc[:-1]) / self.d  # weight of the upper centre at each interior face
        self.delta = (g.lx / g.nx * self.h * g.lz / g.nz) ** (1 / 3)  # (Ny,) LES filter width
        kx = torch.fft.fftfreq(g.nx, d=1 / g.nx, **kw)
        kz = torch.fft.rfftfreq(g.nz, d=1 / g.nz, **kw)
        keep = (kx.abs()[:, None] <= g.nx // 3) & (kz[None, :] <= g.nz // 3)  # (Nx, Nz//2+1)
        self.ix, self.iz = torch.nonzero(keep, as_tuple=True)
        self.ikx = (2j * math.pi / g.lx) * kx[self.ix]  # (K,) compact list of the kept modes
        self.ikz = (2j * math.pi / g.lz) * kz[self.iz]
        self.k2 = -(self.ikx * self.ikx + self.ikz * self.ikz).real
        self.k0 = int(torch.nonzero((self.ix == 0) & (self.iz == 0))[0, 0])
        self._build_operators()
        self._inverses: dict[tuple, Tensor] = {}

    # ---- y operators (real matrices) -------------------------------------------------------
    def _build_operators(self) -> None:
        n, h, d = self.grid.ny, self.h, self.d
        kw = {"dtype": self.dtype, "device": self.device}
        lc = torch.zeros(n, n, **kw)  # centre Laplacian, u = 0 on the walls
        for j in range(n):
            if j < n - 1:
                lc[j, j + 1] += 1 / (d[j] * h[j])
                lc[j, j] -= 1 / (d[j] * h[j])
            else:
                lc[j, j] -= 1 / ((self.yf[-1] - self.yc[-1]) * h[j])
            if j > 0:
                lc[j, j - 1] += 1 / (d[j - 1] * h[j])
                lc[j, j] -= 1 / (d[j - 1] * h[j])
            else:
                lc[j, j] -= 1 / ((self.yc[0] - self.yf[0]) * h[j])
        grad = torch.zeros(n - 1, n, **kw)  # centres -> interior faces
        idx = torch.arange(n - 1)
        grad[idx, idx + 1], grad[idx, idx] = 1 / d, -1 / d
        div = torch.zeros(n, n - 1, **kw)  # interior faces -> centres (v = 0 on the walls)
        div[idx, idx] += 1 / h[:-1]  # face idx + 1 tops cell idx ...
        div[idx + 1, idx] -= 1 / h[1:]  # ... and floors cell idx + 1
        self.lap_c, self.grad_y, self.div_y = lc, grad, div
        self.lap_f = grad @ div  # face Laplacian with v = 0 on the walls, (Ny - 1, Ny - 1)
        poisson = (div @ grad)[None] - self.k2[:, None, None] * torch.eye(n, **kw)  # (K, Ny, Ny)
        poisson[self.k0, 0, 0] += 1.0  # pin the mean pressure (compatible right-hand sides)
        self.poisson_inv = torch.linalg.inv(poisson)
        # v at the faces from its centre means: v_f[j+1] = 2 v_c[j] - v_f[j], v_f[0] = 0
        sign = (-1.0) ** (idx[:, None] - torch.arange(n)[None, :])
        self.faces_from_centres = (2 * sign * (torch.arange(n)[None, :] <= idx[:, None])).to(**kw)  # (Ny - 1, Ny)

    def _implicit_inverse(self, nu: Tensor, coef: float, which: str) -> Tensor:
        """(B or 1, K, n, n) inverse of I - coef nu (L_y - k^2) for the centre (u, w) or face (v) operator.
        Cached: sub-steps come from a ladder of a few sizes (`substep_size`), so few coefficients occur."""
        key = (tuple(nu.tolist()), round(coef, 14), which)
        if key not in self._inverses:
            if len(self._inverses) > 48:
                self._inverses.clear()
            lap = self.lap_c if which == "c" else self.lap_f
            eye = torch.eye(lap.shape[0], dtype=self.dtype, device=self.device)
            nus = nu[:1] if bool((nu == nu[0]).all()) else nu
            op = eye - coef * nus[:, None, None, None] * (lap[None, None] - self.k2[None, :, None, None] * eye)
            self._inverses[key] = torch.linalg.inv(op)
        return self._inverses[key]

    # ---- transforms between the compact spectral form (B, K, n) and physical (B, Nx, n, Nz) ----
    def to_physical(self, c: Tensor) -> Tensor:
        g = self.grid
        full = torch.zeros(c.shape[0], g.nx, g.nz // 2 + 1, c.shape[-1], dtype=c.dtype, device=c.device)
        full[:, self.ix, self.iz] = c
        return torch.fft.irfft2(full.permute(0, 1, 3, 2), s=(g.nx, g.nz), dim=(1, 3))

    def to_spectral(self, f: Tensor) -> Tensor:
        return torch.fft.rfft2(f, dim=(1, 3)).permute(0, 1, 3, 2)[:, self.ix, self.iz]

    @staticmethod
    def _apply(mat: Tensor, c: Tensor) -> Tensor:
        """A real (.., K, n, m) or (n, m) matrix applied along y to a complex (B, K, m) array."""
        r = torch.view_as_real(c)  # (B, K, m, 2)
        return torch.view_as_complex((mat @ r).contiguous())

    def _mean_mode(self) -> float:
        return float(self.grid.nx * self.grid.nz)  # rfft2 of a constant 1

    # ---- state <-> spectral --------------------------------------------------------------
    def _split(self, fields: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        u, vc, w = (self.to_spectral(fields[:, i]) for i in range(3))
        return u, self._apply(self.faces_from_centres, vc), w

    def _assemble(self, u: Tensor, v: Tensor, w: Tensor, p: Tensor) -> Tensor:
        zero = torch.zeros_like(v[..., :1])
        vf = torch.cat([zero, v, zero], -1)
        vc = 0.5 * (vf[..., 1:] + vf[..., :-1])
        return torch.stack([self.to_physical(a) for a in (u, vc, w, p)], 1)

    def init(self, fields: Tensor, re_tau: Tensor | float, bulk_velocity: Tensor | float | None = None, time: float = 0.0) -> GridState:
        """State from centre velocities (B, 3 or 4, Nx, Ny, Nz): dealiased, v put on the faces, projected
        to be divergence-free. `bulk_velocity` (flow-rate drive) defaults to the initial one."""
        g = self.grid
        f = fields.to(device=self.device, dtype=self.dtype)
        if f.ndim != 5 or f.shape[1] not in (3, 4) or tuple(f.shape[2:]) != (g.nx, g.ny, g.nz):
            raise InputError(
                f"channel init: expected fields (B, 3 or 4, {g.nx}, {g.ny}, {g.nz}) with u, v, w first, got {tuple(fields.shape)}"
            )
        check_finite(f, "channel init fields")
        b = f.shape[0]
        re = torch.as_tensor(re_tau, dtype=self.dtype, device=self.device).reshape(-1).expand(b).clone()
        if bool((re <= 0).any()):
            raise InputError(f"channel init re_tau: expected positive values, got {re.tolist()}")
        for r in re.unique().tolist():
            g.check_resolution(r)
        u, w = self.to_spectral(f[:, 0]), self.to_spectral(f[:, 2])
        vc = self.to_spectral(f[:, 1])
        v = vc[..., :-1] * (1 - self.w_lo) + vc[..., 1:] * self.w_lo  # centres -> interior faces
        u, v, w, p = self._project(u, v, w, 1.0)
        ub = self.bulk_velocity(u)
        if bulk_velocity is not None:
            ub = torch.as_tensor(bulk_velocity, dtype=self.dtype, device=self.device).reshape(-1).expand(b).clone()
        params = torch.stack([re, ub], 1)
        t = torch.full((b,), time, dtype=self.dtype, device=self.device)
        return GridState(self._assemble(u, v, w, p), t, params, FIELD_NAMES, PARAM_NAMES)

    def bulk_velocity(self, u: Tensor) -> Tensor:
        """(B,) bulk velocity (1/2) int_0^2 <u> dy from the compact spectral u."""
        return (u[:, self.k0].real * self.h).sum(-1) / (2 * self._mean_mode())

    # ---- the pieces of a sub-stage ---------------------------------------------------------
    def _project(self, u: Tensor, v: Tensor, w: Tensor, scale: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Remove the gradient part: solve D G phi = D u / scale, u -= scale G phi. Returns u, v, w, phi."""
        phi = self._apply(self.poisson_inv, self._div(u, v, w) / scale)
        u = u - scale * self.ikx[:, None] * phi
        w = w - scale * self.ikz[:, None] * phi
        v = v - scale * self._apply(self.grad_y, phi)
        return u, v, w, phi

    def divergence(self, state: GridState) -> Tensor:
        """(B,) largest |div u| of a state's velocity (for checks)."""
        return self.to_physical(self._div(*self._split(state.fields))).abs().amax((1, 2, 3))

    def _div(self, u: Tensor, v: Tensor, w: Tensor) -> Tensor:
        """Discrete divergence at the cell centres, compact spectral (B, K, Ny)."""
        return self.ikx[:, None] * u + self.ikz[:, None] * w + self._apply(self.div_y, v)

    def _to_faces(self, a: Tensor) -> Tensor:
        """Centre values (B, Nx, Ny, Nz) linearly interpolated to all faces, zero on the walls: (B, Nx, Ny + 1, Nz)."""
        w = self.w_lo.view(1, 1, -1, 1)
        inner = a[:, :, :-1] * (1 - w) + a[:, :, 1:] * w
        zero = torch.zeros_like(a[:, :, :1])
        return torch.cat([zero, inner, zero], 2)

    def _mean_to_faces(self, a: Tensor) -> Tensor:
        """Plain mean of the two cells at each interior face, zero on the walls: (B, Nx, Ny + 1, Nz)."""
        zero = torch.zeros_like(a[:, :, :1])
        return torch.cat([zero, 0.5 * (a[:, :, :-1] + a[:, :, 1:]), zero], 2)

    def _volume_to_faces(self, a: Tensor) -> Tensor:
        """Cell-height-weighted mean at each interior face, zero on the walls: (B, Nx, Ny + 1, Nz)."""
        h = self.h.view(1, 1, -1, 1)
        zero = torch.zeros_like(a[:, :, :1])
        return torch.cat([zero, (h[:, :, :-1] * a[:, :, :-1] + h[:, :, 1:] * a[:, :, 1:]) / (h[:, :, :-1] + h[:, :, 1:]), zero], 2)

    def _nonlinear(self, u: Tensor, v: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Explicit terms -div(u u) + div(2 nu_t S) in compact spectral form, and the largest
        explicit rate (CFL) per simulation (B,)."""
        up, wp = self.to_physical(u), self.to_physical(w)
        zero = torch.zeros_like(v[..., :1])
        vf = self.to_physical(torch.cat([zero, v, zero], -1))  # (B, Nx, Ny + 1, Nz)
        vc = 0.5 * (vf[:, :, 1:] + vf[:, :, :-1])
        uu, uw, ww, vv = up * up, up * wp, wp * wp, vc * vc
        # Energy-conserving on the stretched grid: u, w convected through a face as the plain mean of
        # their two cells; v convected in x, z by the cell-height-weighted mean of u, w (the velocity
        # that satisfies continuity on the face's control volume).
        uv, wv = self._mean_to_faces(up) * vf, self._mean_to_faces(wp) * vf
        uv_face, wv_face = self._volume_to_faces(up) * vf, self._volume_to_faces(wp) * vf
        g = self.grid
        hy = self.h.view(1, 1, -1, 1)
        kx_max, kz_max = 2 * math.pi / g.lx * (g.nx // 3), 2 * math.pi / g.lz * (g.nz // 3)
        rate = (up.abs() * kx_max + 2 * vc.abs() / hy + wp.abs() * kz_max).amax((1, 2, 3)) / RK3_LIMIT
        nu_t = None
        if self.closure != "none":
            dx = lambda c: self.to_physical(self.ikx[:, None] * c)  # noqa: E731
            dz = lambda c: self.to_physical(self.ikz[:, None] * c)  # noqa: E731
            vcs = 0.5 * (torch.cat([zero, v], -1) + torch.cat([v, zero], -1))
            dy = lambda f: (f[:, :, 1:] - f[:, :, :-1]) / hy  # noqa: E731  faces -> centres
            uf, wf = self._to_faces(up), self._to_faces(wp)  # only the SGS gradients need them
            grad = torch.stack(
                [
                    torch.stack([dx(u), dy(uf), dz(u)], 1),
                    torch.stack([dx(vcs), dy(vf), dz(vcs)], 1),
                    torch.stack([dx(w), dy(wf), dz(w)], 1),
                ],
                1,
            )  # (B, 3, 3, Nx, Ny, Nz)
            nu_t = eddy_viscosity(self.closure, grad, torch.stack([up, vc, wp], 1), self.delta)
            s = 0.5 * (grad + grad.transpose(1, 2))
            two_nut = 2 * nu_t
            uu, uw, ww, vv = uu - two_nut * s[:, 0, 0], uw - two_nut * s[:, 0, 2], ww - two_nut * s[:, 2, 2], vv - two_nut * s[:, 1, 1]
            tau_xy, tau_zy = self._to_faces(two_nut * s[:, 0, 1]), self._to_faces(two_nut * s[:, 2, 1])
            uv, wv, uv_face, wv_face = uv - tau_xy, wv - tau_zy, uv_face - tau_xy, wv_face - tau_zy
            stiff = kx_max**2 + kz_max**2 + 4 / self.h.square()  # (Ny,) largest diffusion eigenvalue per unit nu_t
            rate = rate + (nu_t.amax((1, 3)) * stiff).amax(-1) / 2.5  # explicit SGS diffusion (RK3: 2.5 on the real axis)
        f_uu, f_uw, f_ww, f_vv = (self.to_spectral(a) for a in (uu, uw, ww, vv))
        f_uv, f_wv = self.to_spectral(uv), self.to_spectral(wv)  # (B, K, Ny + 1)
        f_uv_face, f_wv_face = self.to_spectral(uv_face[:, :, 1:-1]), self.to_spectral(wv_face[:, :, 1:-1])  # (B, K, Ny - 1)
        dyc = lambda f: (f[..., 1:] - f[..., :-1]) / self.h  # noqa: E731  faces -> centres
        nu_ = -(self.ikx[:, None] * f_uu + self.ikz[:, None] * f_uw + dyc(f_uv))
        nw_ = -(self.ikx[:, None] * f_uw + self.ikz[:, None] * f_ww + dyc(f_wv))
        nv_ = -(self.ikx[:, None] * f_uv_face + self.ikz[:, None] * f_wv_face + (f_vv[..., 1:] - f_vv[..., :-1]) / self.d)
        return nu_, nv_, nw_, rate

    def _substep(
        self, state: tuple[Tensor, Tensor, Tensor], params: Tensor, dt: float, first: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
    ) -> tuple[tuple[Tensor, Tensor, Tensor], Tensor]:
        """One RK3 step of size dt; `first` reuses the nonlinear terms computed for the CFL bound."""
        u, v, w = state
        nu = 1 / params[:, 0]
        prev = None
        phi = torch.zeros_like(u)
        for k in range(3):
            n_u, n_v, n_w, _ = first if (k == 0 and first is not None) else self._nonlinear(u, v, w)
            c = C_STAGE[k] * dt
            nub = nu[:, None, None]
            new = []
            for a, n_a, lap, which, i in ((u, n_u, self.lap_c, "c", 0), (v, n_v, self.lap_f, "f", 1), (w, n_w, self.lap_c, "c", 2)):
                visc = nub * (self._apply(lap, a) - self.k2[:, None] * a)
                rhs = a + 0.5 * c * visc + GAMMA[k] * dt * n_a
                if prev is not None:
                    rhs = rhs + ZETA[k] * dt * prev[i]
                if i == 0 and self.drive == "pressure":  # -dP/dx = 1 acts on the mean mode
                    rhs[:, self.k0] += c * self._mean_mode()
                new.append(self._apply(self._implicit_inverse(nu, 0.5 * c, which), rhs))
            prev = (n_u, n_v, n_w)
            u, v, w, phi = self._project(new[0], new[1], new[2], c)
        if self.drive == "flow_rate":
            shift = params[:, 1] - self.bulk_velocity(u)
            u = u.clone()
            u[:, self.k0] += shift[:, None] * self._mean_mode()
        return (u, v, w), phi

    def substep_size(self, rate: Tensor, remaining: float) -> float:
        """The CFL-bounded sub-step from the largest explicit rate (B,), rounded down to the ladder
        dt 2^(-n/4) so that the pre-inverted implicit operators are reused, and at most `remaining`."""
        bound = self.cfl / max(float(rate.max()), 1e-12)
        n = max(0, math.ceil(4 * math.log2(self.dt / bound))) if bound < self.dt else 0
        h = self.dt * 2 ** (-n / 4)
        return remaining if remaining <= h * (1 + 1e-9) else h

    def step(self, state: GridState) -> GridState:
        """Advance by `dt`; the sub-step is re-chosen from the CFL bound before each sub-step."""
        u, v, w = self._split(state.fields)
        remaining = self.dt
        while remaining > 0:
            first = self._nonlinear(u, v, w)
            h = self.substep_size(first[3], remaining)
            (u, v, w), phi = self._substep((u, v, w), state.params, h, first)
            remaining = 0.0 if h == remaining else remaining - h
        out = self._assemble(u, v, w, phi)
        check_finite(out, f"channel solver at t = {float(state.time.max()) + self.dt:.4g} (the simulation diverged)")
        return state.evolve(out, state.time + self.dt)


def laminar_profile(y: Tensor, re_tau: float) -> Tensor:
    """Steady Poiseuille flow under -dP/dx = 1: U = Re_tau y (2 - y) / 2."""
    return 0.5 * re_tau * y * (2 - y)


def startup_profile(y: Tensor, re_tau: float, t: float, n_terms: int = 200) -> Tensor:
    """Exact start-up of Poiseuille flow from rest under -dP/dx = 1 (Fourier series):
    U = Re_tau y (2 - y) / 2 - sum_{n odd} 16 Re_tau / (n pi)^3 sin(n pi y / 2) exp(-(n pi / 2)^2 t / Re_tau)."""
    n = torch.arange(1, 2 * n_terms, 2, dtype=y.dtype)[:, None]
    terms = 16 * re_tau / (n * math.pi) ** 3 * torch.sin(n * math.pi * y / 2) * torch.exp(-((n * math.pi / 2) ** 2) * t / re_tau)
    return laminar_profile(y, re_tau) - terms.sum(0)


def reichardt_profile(y: Tensor, re_tau: float) -> Tensor:
    """Reichardt's turbulent mean profile U+(y+) (1951), mirrored about the centreline."""
    yp = torch.minimum(y, 2 - y) * re_tau
    return torch.log1p(0.4 * yp) / 0.4 + 7.8 * (1 - torch.exp(-yp / 11) - yp / 11 * torch.exp(-yp / 3))


def perturbed_initial(
    grid: ChannelGrid, batch: int, re_tau: float, amplitude: float = 0.1, mean: str = "turbulent", seed: int = 0
) -> Tensor:
    """(B, 3, Nx, Ny, Nz) centre velocities: a mean profile ("turbulent": Reichardt; "laminar": the
    Poiseuille profile of the same bulk velocity) plus random large-scale disturbances of relative
    size `amplitude`, vanishing at the walls. The solver's `init` makes them divergence-free."""
    gen = torch.Generator().manual_seed(seed)
    y = grid.centres()
    turb = reichardt_profile(y, re_tau)
    ub = (turb * (grid.faces()[1:] - grid.faces()[:-1])).sum() / 2
    prof = turb if mean == "turbulent" else 1.5 * ub * y * (2 - y)
    x = grid.x()[:, None, None] * 2 * math.pi / grid.lx
    z = grid.z()[None, None, :] * 2 * math.pi / grid.lz
    wall = (y * (2 - y))[None, :, None]
    out = torch.zeros(batch, 3, grid.nx, grid.ny, grid.nz, dtype=torch.float64)
    out[:, 0] = prof[None, :, None]
    for b in range(batch):
        for c in range(3):
            for _ in range(6):
                mx, mz = (int(torch.randint(0, 4, (), generator=gen)) for _ in range(2))
                ph = torch.rand(2, generator=gen, dtype=torch.float64) * 2 * math.pi
                my = int(torch.randint(1, 4, (), generator=gen))
                shape = torch.cos(mx * x + ph[0]) * torch.cos(mz * z + ph[1]) * torch.sin(my * math.pi * y / 2)[None, :, None]
                out[b, c] += amplitude * ub * wall * shape * torch.randn((), generator=gen, dtype=torch.float64)
    return out
