"""Incompressible Navier-Stokes by Taylor-Hood finite elements on a body-fitted triangulation.

    du/dt + (u . grad) u = -grad p + nu lap u,    div u = 0

Velocity in continuous P2, pressure in P1 (the inf-sup stable Taylor-Hood pair), assembled by
scikit-fem on a curved (P2-geometry) mesh such as `cylinder_channel_mesh`; the sparse
systems are solved directly (SciPy's SuperLU). Unlike `Incompressible2D` (uniform grid,
staircase obstacles, batched torch), the body is represented exactly, so forces on it are
accurate: this is the solver validated against the DFG cylinder benchmark.

    steady   Newton's method on the steady equations (quadratic convergence)
    step     BDF2 with the convecting velocity extrapolated, 2 u^n - u^(n-1): one linear
             (Oseen) saddle-point solve per step, second order in time; BDF1 on the first
             step and whenever dt changes

Boundaries (mesh facet tags): `inflow` gets the velocity (inflow(y), 0), every tag in
`no_slip` gets u = 0, `outflow` is left natural ("do nothing": nu du/dn - p n = 0).

Forces on the body (tag `body`) are computed from the discrete momentum residual tested with
a function equal to one on the body's velocity nodes (John 2004): a volume integral, more
accurate than the surface integral of the stress.

Shapes: a `FlowState` holds the velocity nodal values (2, N) at the N P2 nodes (`nodes`), the
pressure at the mesh vertices (V,), and the force on the body (2,).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.linalg import LinearOperator, SuperLU, gmres, splu
from skfem import Basis, BilinearForm, ElementTriP1, ElementTriP2, ElementVector, MeshTri2, asm
from skfem.helpers import ddot, div, dot, grad, mul

from surrogate.errors import InputError

NEWTON_MAX_ITERATIONS = 25
GMRES_ITERATIONS = 15
GMRES_RTOL = 1e-11


@BilinearForm
def _mass(u, v, w):  # type: ignore[no-untyped-def]
    return dot(u, v)


@BilinearForm
def _laplace(u, v, w):  # type: ignore[no-untyped-def]
    return ddot(grad(u), grad(v))


@BilinearForm
def _divergence(u, q, w):  # type: ignore[no-untyped-def]
    return div(u) * q


@BilinearForm
def _convection(u, v, w):  # type: ignore[no-untyped-def]
    """(a . grad) u . v for a given convecting velocity a."""
    return dot(mul(grad(u), w["a"]), v)


@BilinearForm
def _convection_derivative(u, v, w):  # type: ignore[no-untyped-def]
    """(u . grad) a . v: the second half of the convection term's Jacobian at a."""
    return dot(mul(grad(w["a"]), u), v)


@dataclass(frozen=True)
class FlowState:
    """One time level. `previous` (the velocity one step earlier) and `last_dt` feed BDF2."""

    velocity: NDArray  # (2, N) at the P2 nodes
    pressure: NDArray  # (V,) at the vertices
    time: float
    force: NDArray  # (2,) on the body, per unit depth and unit density
    previous: NDArray | None = None  # (2, N)
    last_dt: float | None = None


class NavierStokesFEM:
    """Taylor-Hood P2/P1 solver on one mesh; see the module docstring."""

    def __init__(
        self,
        mesh: MeshTri2,
        viscosity: float,
        inflow: Callable[[NDArray], NDArray],
        dt: float = 0.01,
        no_slip: tuple[str, ...] = ("walls", "cylinder"),
        body: str = "cylinder",
    ) -> None:
        if viscosity <= 0:
            raise InputError(f"NavierStokesFEM: viscosity must be positive, got {viscosity}")
        if dt <= 0:
            raise InputError(f"NavierStokesFEM: dt must be positive, got {dt}")
        tags = set(mesh.boundaries or {})
        missing = {"inflow", body, *no_slip} - tags
        if missing:
            raise InputError(f"NavierStokesFEM: the mesh has no boundary tagged {sorted(missing)}; it has {sorted(tags)}")
        self.mesh, self.nu, self.dt = mesh, viscosity, dt
        self.ubasis = Basis(mesh, ElementVector(ElementTriP2()), intorder=4)
        self.pbasis = self.ubasis.with_element(ElementTriP1())
        self.nu_dofs, self.np_dofs = self.ubasis.N, self.pbasis.N
        self.mass = asm(_mass, self.ubasis)
        self.stiffness = viscosity * asm(_laplace, self.ubasis)
        self.div = asm(_divergence, self.ubasis, self.pbasis)  # (Np, Nu)
        inflow_dofs = self.ubasis.get_dofs("inflow")
        dirichlet = np.unique(np.concatenate([inflow_dofs.all(), *(self.ubasis.get_dofs(t).all() for t in no_slip)]))
        self.free = np.setdiff1d(np.arange(self.nu_dofs + self.np_dofs), dirichlet)
        self.boundary_velocity = np.zeros(self.nu_dofs)
        ix = inflow_dofs.all("u^1")
        self.boundary_velocity[ix] = inflow(self.ubasis.doflocs[1, ix])
        body_dofs = self.ubasis.get_dofs(body)
        self.body_x, self.body_y = body_dofs.all("u^1"), body_dofs.all("u^2")
        # The P2 nodes and the dofs of each velocity component at them.
        self.ux_dofs = np.concatenate([self.ubasis.nodal_dofs[0], self.ubasis.facet_dofs[0]])
        self.uy_dofs = np.concatenate([self.ubasis.nodal_dofs[1], self.ubasis.facet_dofs[1]])
        self.nodes = self.ubasis.doflocs[:, self.ux_dofs]  # (2, N)
        self._lu: SuperLU | None = None  # the last factorization, reused as a preconditioner

    # ---- packing ---------------------------------------------------------------------
    def _unpack(self, velocity: NDArray) -> NDArray:
        """(2, N) nodal values -> the velocity dof vector (Nu,)."""
        out = np.empty(self.nu_dofs)
        out[self.ux_dofs], out[self.uy_dofs] = velocity[0], velocity[1]
        return out

    def _pack(self, u: NDArray) -> NDArray:
        return np.stack([u[self.ux_dofs], u[self.uy_dofs]])

    def _state(self, u: NDArray, p: NDArray, time: float, residual: NDArray, previous: NDArray | None, dt: float | None) -> FlowState:
        if not (np.isfinite(u).all() and np.isfinite(p).all()):
            raise FloatingPointError(f"NavierStokesFEM: the solution is not finite at t = {time:.4g}")
        # The residual tested with the body's indicator is minus the force the fluid exerts on it.
        force = -np.array([residual[self.body_x].sum(), residual[self.body_y].sum()])
        prev = None if previous is None else self._pack(previous)
        return FlowState(self._pack(u), p.copy(), time, force, prev, dt)

    def _solve(self, matrix: sp.csr_matrix, rhs: NDArray, x: NDArray, guess: NDArray | None = None) -> NDArray:
        """Solve on the free dofs, keeping x's Dirichlet values.

        With a `guess` (time stepping), GMRES preconditioned by the last LU factorization is
        tried first: the matrices of successive steps differ only in the convecting velocity,
        so it converges in a few iterations at a fraction of a factorization's cost. When it
        does not reach the tolerance in `GMRES_ITERATIONS`, the matrix is factorized afresh.
        """
        b = (rhs - matrix @ x)[self.free]
        a = matrix[self.free][:, self.free].tocsc()
        x = x.copy()
        if guess is not None and self._lu is not None:
            lu = self._lu
            y, info = gmres(
                a,
                b,
                x0=guess[self.free],
                rtol=GMRES_RTOL,
                atol=0.0,
                restart=GMRES_ITERATIONS,
                maxiter=1,
                M=LinearOperator(a.shape, matvec=lu.solve, dtype=float),
            )
            if info == 0:
                x[self.free] = y
                return x
        # Orderings measured on these saddle-point matrices: with the time derivative's mass term
        # the minimum-degree ordering of A + A^T halves COLAMD's fill; without it (the steady
        # Newton matrices) the same ordering pivots into 30 times the fill, so COLAMD there.
        ordering = "MMD_AT_PLUS_A" if guess is not None else "COLAMD"
        self._lu = splu(a, permc_spec=ordering, diag_pivot_thresh=0.01)
        x[self.free] = self._lu.solve(b)
        return x

    def _saddle(self, velocity_block: sp.spmatrix) -> sp.csr_matrix:
        """[[A, -B^T], [-B, 0]] in CSR, ready for `_solve`'s row selection of the free dofs."""
        return sp.bmat([[velocity_block, -self.div.T], [-self.div, None]], format="csr")

    # ---- solvers ---------------------------------------------------------------------
    def init(self) -> FlowState:
        """Fluid at rest with the boundary values applied, t = 0."""
        u = self.boundary_velocity.copy()
        return self._state(u, np.zeros(self.np_dofs), 0.0, np.zeros(self.nu_dofs), None, None)

    def steady(self, tol: float = 1e-10) -> FlowState:
        """The steady solution by Newton's method from Stokes flow; fails if it does not converge."""
        x = np.concatenate([self.boundary_velocity, np.zeros(self.np_dofs)])
        x = self._solve(self._saddle(self.stiffness), np.zeros_like(x), x)  # Stokes
        for _ in range(NEWTON_MAX_ITERATIONS):
            a = self.ubasis.interpolate(x[: self.nu_dofs])
            conv = asm(_convection, self.ubasis, a=a)
            jac = self._saddle(self.stiffness + conv + asm(_convection_derivative, self.ubasis, a=a))
            residual = np.concatenate(
                [(self.stiffness + conv) @ x[: self.nu_dofs] - self.div.T @ x[self.nu_dofs :], -self.div @ x[: self.nu_dofs]]
            )
            delta = self._solve(jac, -residual, np.zeros_like(x))
            x += delta
            if np.abs(delta).max() <= tol * max(1.0, np.abs(x[: self.nu_dofs]).max()):
                break
        else:
            raise FloatingPointError(f"NavierStokesFEM.steady: Newton did not converge in {NEWTON_MAX_ITERATIONS} iterations")
        u, p = x[: self.nu_dofs], x[self.nu_dofs :]
        conv = asm(_convection, self.ubasis, a=self.ubasis.interpolate(u))
        return self._state(u, p, 0.0, (self.stiffness + conv) @ u - self.div.T @ p, None, None)

    def step(self, state: FlowState) -> FlowState:
        """Advance by `self.dt` (BDF2; BDF1 on a first step or after a change of dt)."""
        dt = self.dt
        u = self._unpack(state.velocity)
        bdf2 = state.previous is not None and state.last_dt == dt
        if bdf2:
            u_old = self._unpack(state.previous)  # type: ignore[arg-type]
            a0, history, convecting = 1.5 / dt, self.mass @ (4 * u - u_old) / (2 * dt), 2 * u - u_old
        else:
            a0, history, convecting = 1.0 / dt, self.mass @ u / dt, u
        conv = asm(_convection, self.ubasis, a=self.ubasis.interpolate(convecting))
        momentum = a0 * self.mass + self.stiffness + conv
        x0 = np.concatenate([self.boundary_velocity, np.zeros(self.np_dofs)])
        guess = np.concatenate([convecting, state.pressure])
        x = self._solve(self._saddle(momentum), np.concatenate([history, np.zeros(self.np_dofs)]), x0, guess)
        u_new, p = x[: self.nu_dofs], x[self.nu_dofs :]
        residual = momentum @ u_new - history - self.div.T @ p
        return self._state(u_new, p, state.time + dt, residual, u, dt)
