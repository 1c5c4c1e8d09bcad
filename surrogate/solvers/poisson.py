"""Fast pressure-Poisson solves on a uniform grid by diagonalization of the 1D Laplacians.

The 5-point Laplacian with a Neumann or Dirichlet condition on each side is a Kronecker
sum L = Ax (x) I + I (x) Ay of two small symmetric tridiagonal matrices. With their
eigendecompositions Ax = Qx Lx Qx^T, Ay = Qy Ly Qy^T, the solve is four matrix products
and a division (the "fast diagonalization method"): exact, O(n^3) per 2D field in
matmuls, and the same on CPU and GPU.

Shapes: rhs and solution (B, NX, NY), cell centred.
"""

from __future__ import annotations

import torch
from torch import Tensor

from surrogate.errors import InputError

KINDS = ("neumann", "dirichlet")


def laplacian_1d(n: int, h: float, low: str, high: str, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The (n, n) second-difference matrix on cell centres; Dirichlet means p = 0 on the face."""
    for kind in (low, high):
        if kind not in KINDS:
            raise InputError(f"pressure boundary {kind!r}: expected one of {KINDS}")
    a = torch.zeros(n, n, dtype=dtype, device=device)
    i = torch.arange(n, device=device)
    a[i, i] = -2.0
    a[i[:-1], i[1:]] = 1.0
    a[i[1:], i[:-1]] = 1.0
    # Neumann: the ghost equals the cell (dp/dn = 0); Dirichlet on the face: the ghost is -cell.
    a[0, 0] += 1.0 if low == "neumann" else -1.0
    a[-1, -1] += 1.0 if high == "neumann" else -1.0
    return a / h**2


class PoissonSolver:
    """Solves lap(p) = rhs with per-side Neumann/Dirichlet conditions (x low/high, y low/high).

    With Neumann on every side the mean of p is fixed to zero (the rhs must have zero sum).
    """

    def __init__(
        self,
        nx: int,
        ny: int,
        dx: float,
        dy: float,
        bc: tuple[str, str, str, str],
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
    ) -> None:
        device = torch.device(device)
        lx, qx = torch.linalg.eigh(laplacian_1d(nx, dx, bc[0], bc[1], dtype, device))
        ly, qy = torch.linalg.eigh(laplacian_1d(ny, dy, bc[2], bc[3], dtype, device))
        self.qx, self.qy = qx, qy
        denom = lx[:, None] + ly[None, :]  # (NX, NY), eigenvalues of L
        singular = denom.abs() < 1e-9 * denom.abs().max()
        self.inv = torch.where(singular, 0.0, 1.0 / torch.where(singular, 1.0, denom))

    def solve(self, rhs: Tensor) -> Tensor:
        hat = self.qx.T @ rhs @ self.qy  # (B, NX, NY) in the eigenbasis
        return self.qx @ (hat * self.inv) @ self.qy.T
