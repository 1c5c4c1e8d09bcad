"""PI-HC-MoE (Chalapathi, Du and Krishnapriyan 2024): any operator that outputs N basis
functions on the space-time grid, made to satisfy a PDE by per-expert weight fits.

The space-time grid is split into K blocks, the experts, as the paper decomposes its
domain: `time_splits` blocks along time times `splits` along each space axis. Expert k
finds the weights w_k of the N basis functions that minimize the PDE residual on its block
and the side conditions on its nodes (initial values only in the first time block; boundary
values in every block), by the batched Levenberg-Marquardt solve of `MoEHardConstraint`,
differentiated by the implicit function theorem. An expert in a later time block has no
initial values of its own: what it knows of them comes through the basis, which the operator
computes from u0 for the whole space-time grid, as in the paper. The prediction on expert
k's nodes is the basis there weighted by w_k. All B x K experts are solved as one batch;
K = 1 is the single global hard constraint of Negiar et al. that the paper compares with.
The fit runs in float64 (the operator may be float32).

The residual comes in two forms (`residual`):
    "collocation"     the paper's: the PDE u_t = F(u) + f of the basis expansion at sampled
                      collocation nodes, u_t the basis' time derivative (second-order
                      differences along time, `SpacetimePDE.time_derivative`)
    "crank-nicolson"  ours: the Crank-Nicolson row of each cell n -> n+1 (the discrete
                      scheme whose exact solution `SpacetimePDE.solve` gives)

Shapes: u0 (B, *space); params (B, P); basis (B, N, T, *space); output u (B, T, *space).
"""

from __future__ import annotations

import itertools
import logging
import math

import torch
from torch import Tensor, nn

from surrogate.errors import InputError
from surrogate.operators.constraints.moe_hard import MoEHardConstraint
from surrogate.operators.constraints.spacetime_pde import SpacetimePDE

RESIDUALS = ("collocation", "crank-nicolson")
log = logging.getLogger(__name__)


def spacetime_input(u0: Tensor, n_times: int) -> Tensor:
    """The initial values broadcast along time as the operator's one input channel, (B, 1, T, *space)."""
    return u0[:, None, None].expand(u0.shape[0], 1, n_times, *u0.shape[1:])


class ExpertPartition:
    """Blocks of a (T, *space) node grid, `splits[a]` blocks along axis a (K = prod(splits)).

    `owner` (P,) is the expert of each node (P = T * prod(space), row-major): the expert whose
    weights predict it. Expert k *fits* the rows of its block widened by `overlap` nodes on
    each side along every split axis (overlapping subdomains, as in Schwarz methods: without
    them an expert's PDE rows next to its edge are free to take any value the basis allows
    just across it). A cell n -> n+1 is a row of every expert whose widened block holds its
    upper node.
    """

    def __init__(self, grid: tuple[int, ...], splits: tuple[int, ...], overlap: int = 0) -> None:
        if len(splits) != len(grid) or any(not 1 <= k <= n for k, n in zip(splits, grid)):
            raise InputError(f"expert splits {tuple(splits)}: expected one count per grid axis {tuple(grid)}, each in 1..size")
        if overlap < 0:
            raise InputError(f"expert overlap: expected >= 0 nodes, got {overlap}")
        self.grid, self.splits, self.n_experts = tuple(grid), tuple(splits), math.prod(splits)
        owner = torch.zeros(grid, dtype=torch.long)
        inside = []  # per axis (k, n): index in block b, widened
        for a, (n, k) in enumerate(zip(grid, splits)):
            idx = torch.arange(n)
            shape = [1] * len(grid)
            shape[a] = n
            owner = owner * k + (idx * k // n).view(shape)
            start = torch.tensor([-(-b * n // k) for b in range(k + 1)])  # first index of each block, and n
            halo = overlap if k > 1 else 0
            inside.append((idx[None] >= start[:-1, None] - halo) & (idx[None] < start[1:, None] + halo))
        member = torch.ones(self.n_experts, *grid, dtype=torch.bool)
        for e, blocks in enumerate(itertools.product(*[range(k) for k in splits])):  # row-major, as owner
            for a, b in enumerate(blocks):
                shape = [1] * len(grid)
                shape[a] = grid[a]
                member[e] &= inside[a][b].view(shape)
        self.owner = owner.flatten()
        self.member = member.reshape(self.n_experts, -1)  # (K, P)

    def block(self, k: int) -> tuple[int, ...]:
        """Expert k's block index along each axis (time first)."""
        return tuple(int(i) for i in torch.unravel_index(torch.tensor(k), self.splits))

    def _per_expert(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        """Flat node indices in each expert's widened block, padded: indices (K, M) and mask (K, M)."""
        groups = [nodes[self.member[k, nodes]] for k in range(self.n_experts)]
        m = max(1, max(len(g) for g in groups))
        idx = torch.zeros(self.n_experts, m, dtype=torch.long)
        mask = torch.zeros(self.n_experts, m, dtype=torch.float64)
        for k, g in enumerate(groups):
            idx[k, : len(g)], mask[k, : len(g)] = g, 1.0
        return idx, mask

    def rows(self, cell_mask: Tensor, side_mask: Tensor, collocation: bool = False) -> dict[str, Tensor]:
        """Per-expert rows: upper/lower node of each PDE cell (with `collocation`, each free node,
        lower = upper), prescribed nodes, with masks."""
        stride = 0 if collocation else math.prod(self.grid[1:])
        free = ~side_mask.flatten().cpu() if collocation else cell_mask.flatten().cpu()
        upper = torch.nonzero(free)[:, 0] + stride  # cell (n, j) has upper node (n+1, j)
        hi, cmask = self._per_expert(upper)
        side, smask = self._per_expert(torch.nonzero(side_mask.flatten().cpu())[:, 0])
        return {"hi": hi, "lo": (hi - stride).clamp(min=0), "cell_mask": cmask, "side": side, "side_mask": smask}


class HardConstrainedOperator(nn.Module):
    """`basis_operator` (B, 1, T, *space) + params -> (B, N, T, *space), constrained by `pde` per expert.

    Args:
        splits: experts per space axis; all ones (and `time_splits` 1) is the global constraint.
        time_splits: experts along time.
        residual: "collocation" (the paper's) or "crank-nicolson" (see the module docstring).
        overlap: nodes by which each expert's fitted rows reach into its neighbours' blocks.
        distributed: share the B x K expert fits out over the torch.distributed ranks (see
            `MoEHardConstraint.solve`; every rank computes the same basis).
        reg: Tikhonov weight on w (keeps experts with few rows well posed).
        points_per_expert: in training, each expert fits the PDE rows of this many cells drawn at
            random from its block (all side conditions always), as the paper samples points;
            None, and always in eval mode: every cell.
        on_failure: an expert fit that did not converge: "raise" (`ExpertsNotConverged`; the physics
            trainer skips that step and counts it) or, only when asked, "warn" (log, use the last iterate).
    """

    def __init__(
        self,
        basis_operator: nn.Module,
        pde: SpacetimePDE,
        splits: tuple[int, ...],
        reg: float = 1e-8,
        max_iter: int = 30,
        tol: float = 1e-9,
        on_failure: str = "raise",
        points_per_expert: int | None = None,
        overlap: int = 0,
        distributed: bool = False,
        time_splits: int = 1,
        residual: str = "collocation",
    ) -> None:
        super().__init__()
        if residual not in RESIDUALS:
            raise InputError(f"residual {residual!r}: expected one of {RESIDUALS}")
        self.distributed, self.residual = distributed, residual
        self.points_per_expert = points_per_expert
        self.basis_operator, self.pde = basis_operator, pde
        self.partition = ExpertPartition(pde.grid, (time_splits, *splits), overlap)
        side_mask, _ = pde.side_conditions(torch.zeros(1, *pde.grid[1:], dtype=torch.float64))
        self._rows = self.partition.rows(pde.cell_mask(), side_mask, collocation=residual == "collocation")
        self._names = list(pde.linear_maps(torch.zeros(pde.grid, dtype=torch.float64)))
        self._lower_names = ["u_t"] if residual == "collocation" else self._names
        unforced = not bool(pde.forcing().any())
        for k in range(self.partition.n_experts):
            if unforced and not bool(self._rows["side_mask"][k].any()):
                t_block, *space_block = self.partition.block(k)
                log.warning(
                    "expert %d (time block %d, space block %s) holds no initial or boundary values and the PDE has no "
                    "forcing: u = 0 may fit its rows whatever the basis; split time less, or space so that each block "
                    "touches a boundary",
                    k,
                    t_block,
                    tuple(space_block),
                )
        self.constraint = MoEHardConstraint(self._residual, reg=reg, max_iter=max_iter, tol=tol, on_failure=on_failure)

    def _residual(self, w: Tensor, *t: Tensor) -> Tensor:
        """One expert's rows for weights w (N,): the maps at lower and upper nodes (M, N) each
        (at the collocation nodes: the maps and u_t), forcing at both (M,), row mask (M,), side
        basis (Ms, N), side values and mask (Ms,). PDE rows are scaled by dt (units of u)."""
        m, m_lo = len(self._names), len(self._lower_names)
        lo = {k: t[i] @ w for i, k in enumerate(self._lower_names)}
        hi = {k: t[m_lo + i] @ w for i, k in enumerate(self._names)}
        f_lo, f_hi, cmask, side_basis, side_values, smask = t[m_lo + m :]
        if self.residual == "collocation":  # lo is u_t at the node, hi the maps there
            r = self.pde.dt * (lo["u_t"] - self.pde.rate(hi) - f_hi) * cmask
        else:
            rate = self.pde.rate(hi) + self.pde.rate(lo) + f_hi + f_lo
            r = (hi["u"] - lo["u"] - 0.5 * self.pde.dt * rate) * cmask
        return torch.cat([r, (side_basis @ w - side_values) * smask])

    def weights(self, basis: Tensor, u0: Tensor) -> Tensor:
        """Each expert's basis weights (B, K, N) for a basis (B, N, T, *space), float64."""
        if tuple(basis.shape[2:]) != self.pde.grid:
            raise InputError(f"basis: expected (B, N, {', '.join(map(str, self.pde.grid))}), got {tuple(basis.shape)}")
        b, n = basis.shape[:2]
        k = self.partition.n_experts
        rows = {name: v.to(basis.device) for name, v in self._rows.items()}
        if self.training and self.points_per_expert is not None and self.points_per_expert < rows["hi"].shape[1]:
            score = torch.rand(rows["cell_mask"].shape, device=basis.device) + rows["cell_mask"]  # valid cells first
            pick = score.topk(self.points_per_expert, dim=1).indices  # (K, points)
            rows.update({name: rows[name].gather(1, pick) for name in ("hi", "lo", "cell_mask")})
        flat = {name: v.flatten(2) for name, v in self.pde.linear_maps(basis).items()}  # (B, N, P)
        if self.residual == "collocation":
            flat["u_t"] = self.pde.time_derivative(basis).flatten(2)

        def take(values: Tensor, idx: Tensor) -> Tensor:  # (B, N, P) at idx (K, M) -> (B*K, M, N)
            return values[:, :, idx].permute(0, 2, 3, 1).reshape(b * k, idx.shape[1], n)

        def per_batch(values: Tensor) -> Tensor:  # (K, M) -> (B*K, M)
            return values.expand(b, *values.shape).reshape(b * k, -1)

        force = self.pde.forcing().to(basis).flatten()
        _, side_values = self.pde.side_conditions(u0.to(basis))
        tensors = [take(flat[name], rows["lo"]) for name in self._lower_names] + [take(flat[name], rows["hi"]) for name in self._names]
        tensors += [per_batch(force[rows["lo"]]), per_batch(force[rows["hi"]]), per_batch(rows["cell_mask"].to(basis))]
        tensors += [
            take(flat["u"], rows["side"]),
            side_values.flatten(1)[:, rows["side"]].reshape(b * k, -1),
            per_batch(rows["side_mask"].to(basis)),
        ]
        return self.constraint.solve(*tensors, distributed=self.distributed).view(b, k, n)

    def combine(self, basis: Tensor, weights: Tensor) -> Tensor:
        """u (B, T, *space): on each node, the basis weighted by its owner's weights (B, K, N)."""
        owner = self.partition.owner.to(basis.device)
        w = weights[:, owner]  # (B, P, N)
        return (basis.flatten(2) * w.transpose(1, 2)).sum(1).view(basis.shape[0], *self.pde.grid)

    def forward(self, u0: Tensor, params: Tensor) -> Tensor:
        x = spacetime_input(u0, self.pde.grid[0]).float()
        basis = self.basis_operator(x, params.float()).double()  # (B, N, T, *space)
        return self.combine(basis, self.weights(basis, u0.double()))
