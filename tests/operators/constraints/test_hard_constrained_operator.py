import pytest
import torch
from torch import nn

from surrogate.errors import InputError
from surrogate.operators.constraints.hard_constrained_operator import ExpertPartition, HardConstrainedOperator
from surrogate.operators.constraints.pdes import DiffusionSorptionPDE, VorticityPDE
from surrogate.operators.constraints.soft_constraint import SoftConstrainedOperator
from surrogate.operators.fno import FNO
from surrogate.solvers.diffusion_sorption import random_initial_condition
from surrogate.solvers.ns2d import NS2D, gaussian_random_field
from surrogate.training.physics import fit_physics


class FixedBasis(nn.Module):
    """An 'operator' that returns a given basis, whatever its input."""

    def __init__(self, basis: torch.Tensor) -> None:
        super().__init__()
        self.basis = basis

    def forward(self, x, params):
        return self.basis


def basis_with(solution: torch.Tensor, extra: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(solution.shape[0], extra, *solution.shape[1:], generator=gen, dtype=torch.float64)
    return torch.cat([noise[:, :1], solution[:, None], noise[:, 1:]], 1)  # (B, N, T, *space)


def test_grid_solution_has_zero_residual():
    pde = DiffusionSorptionPDE(9, 12, 20.0)
    u0 = random_initial_condition(3, 12, seed=0)
    u = pde.solve(u0)
    r, s = pde.residuals(u, u0)
    assert float(r.abs().max()) < 1e-11 and float(s.abs().max()) == 0.0
    assert float(u[:, 1:, 0].sub(1).abs().max()) == 0.0  # the source node


@pytest.mark.parametrize("splits,time_splits", [((1,), 1), ((2,), 1), ((3,), 1), ((1,), 3)])
def test_experts_recover_a_solution_in_the_span_of_the_basis(splits, time_splits):
    """Nonlinear diffusion-sorption: if the basis spans the grid solution, every expert finds it,
    also experts of later time blocks, which hold no initial values of their own."""
    pde = DiffusionSorptionPDE(9, 12, 20.0)
    u0 = random_initial_condition(2, 12, seed=1)
    truth = pde.solve(u0)
    basis = basis_with(truth, 4, seed=2)
    op = HardConstrainedOperator(
        FixedBasis(basis), pde, splits, reg=1e-14, tol=1e-13, max_iter=60, time_splits=time_splits, residual="crank-nicolson"
    )
    assert op.partition.n_experts == splits[0] * time_splits
    u = op.combine(basis, op.weights(basis, u0))
    assert float((u - truth).abs().max()) < 1e-9


@pytest.mark.parametrize("time_splits", [1, 3])
def test_collocation_experts_recover_a_solution_of_the_pointwise_pde(time_splits):
    """The collocation residual dt (u_t - F(u)) at the free nodes: zero for the steady outflow
    profile of the linear limit, which the experts find among random basis functions; the
    Crank-Nicolson solution of a transient is not a collocation solution (u_t differs)."""
    from surrogate.solvers.diffusion_sorption import SorptionCoefficients

    pde = DiffusionSorptionPDE(9, 12, 20.0, SorptionCoefficients(k_f=0.0))
    x = torch.linspace(0, 1, 12, dtype=torch.float64)
    steady = (1 - x / (1 + pde.h + pde.coef.diffusivity)).expand(2, 9, 12)
    r, s = pde.residuals(steady, steady[:, 0], form="collocation")
    assert float(r.abs().max()) < 1e-13 and float(s.abs().max()) < 1e-15
    transient = pde.solve(random_initial_condition(2, 12, seed=1))
    assert float(pde.residuals(transient, transient[:, 0], form="collocation")[0].abs().max()) > 1e-4
    basis = basis_with(steady, 4, seed=2)
    op = HardConstrainedOperator(FixedBasis(basis), pde, (1,), reg=1e-14, tol=1e-13, max_iter=60, time_splits=time_splits)
    assert op.residual == "collocation"
    u = op.combine(basis, op.weights(basis, steady[:, 0]))
    assert float((u - steady).abs().max()) < 1e-9


def test_vorticity_experts_recover_the_spectral_solution():
    solver = NS2D(resolution=8, dt=0.05)
    pde = VorticityPDE(4, solver, 1e-2)
    u0 = gaussian_random_field(1, 8, torch.Generator().manual_seed(0))
    truth = pde.solve(u0)
    basis = basis_with(truth, 3, seed=3)
    op = HardConstrainedOperator(FixedBasis(basis), pde, (2, 2), reg=1e-14, tol=1e-13, max_iter=60, residual="crank-nicolson")
    assert float((op.combine(basis, op.weights(basis, u0)) - truth).abs().max()) < 1e-9
    # and the grid solution is close to the spectral solver's own trajectory
    state, levels = solver.init(u0, 1e-2), []
    for _ in range(4):
        levels.append(state.fields[:, 0])
        state = solver.step(state)
    ref = torch.stack(levels, 1)
    assert float((truth - ref).norm() / ref.norm()) < 2e-2  # 8x8, no dealiasing in the residual


@pytest.mark.parametrize("residual,time_splits", [("crank-nicolson", 1), ("collocation", 1), ("collocation", 2)])
def test_gradient_through_the_experts_matches_finite_differences(residual, time_splits):
    """The implicit-function-theorem gradient of the weights, through space(-time) experts."""
    pde = DiffusionSorptionPDE(5, 8, 20.0)
    u0 = random_initial_condition(1, 8, seed=4)
    gen = torch.Generator().manual_seed(5)
    basis = torch.randn(1, 3, 5, 8, generator=gen, dtype=torch.float64) * 0.1 + 0.1
    op = HardConstrainedOperator(
        FixedBasis(basis), pde, (2,), reg=1e-3, tol=1e-11, max_iter=100, time_splits=time_splits, residual=residual
    )
    assert op.partition.n_experts == 2 * time_splits
    c = torch.randn(1, 5, 8, generator=gen, dtype=torch.float64)

    def loss(b):
        return (op.combine(b, op.weights(b, u0)) * c).sum()

    b = basis.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(b), b)
    for idx in [(0, 0, 2, 3), (0, 2, 4, 7), (0, 1, 1, 0)]:
        d = torch.zeros_like(basis)
        d[idx] = 1e-6
        fd = (loss(basis + d) - loss(basis - d)) / 2e-6
        assert float(g[idx]) == pytest.approx(float(fd), rel=1e-4, abs=1e-7)


def test_short_physics_training_reduces_the_residual_of_both_kinds():
    pde = DiffusionSorptionPDE(9, 12, 20.0)
    u0 = random_initial_condition(8, 12, seed=6)
    torch.manual_seed(0)
    soft = SoftConstrainedOperator(FNO(1, 1, 0, (4, 4), 8, 2, use_mask=False), 9)
    hard = HardConstrainedOperator(FNO(1, 6, 0, (4, 4), 8, 2, use_mask=False), pde, (2,), reg=1e-6)
    losses = {}
    for name, model in (("soft", soft), ("hard", hard)):
        losses[name] = fit_physics(model, pde, u0, epochs=5, batch=4, lr=1e-2)["loss"]
        assert losses[name][-1] < 0.6 * losses[name][0], losses[name]
    assert losses["hard"][-1] < 0.5 * losses["soft"][-1]  # the constraint does most of the work


def test_an_expert_without_side_conditions_is_named(caplog):
    """A later time block away from the source holds no initial or boundary values; with no
    forcing u = 0 fits its rows (diffusion-sorption is homogeneous), which the user is told."""
    pde = DiffusionSorptionPDE(9, 12, 20.0)
    with caplog.at_level("WARNING"):
        HardConstrainedOperator(FixedBasis(torch.zeros(1)), pde, (2,), time_splits=2)
    assert "expert 3 (time block 1, space block (1,)) holds no initial or boundary values" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        HardConstrainedOperator(FixedBasis(torch.zeros(1)), pde, (1,), time_splits=3)
    assert caplog.text == ""


def test_bad_splits_and_basis_shape():
    with pytest.raises(InputError, match=r"expert splits \(1, 20\)"):
        ExpertPartition((9, 12), (1, 20))
    pde = DiffusionSorptionPDE(9, 12, 20.0)
    op = HardConstrainedOperator(FixedBasis(torch.zeros(1)), pde, (2,))
    with pytest.raises(InputError, match=r"basis: expected \(B, N, 9, 12\)"):
        op.weights(torch.zeros(1, 3, 9, 10, dtype=torch.float64), torch.zeros(1, 12))


def test_partition_owns_each_node_once_and_overlaps_by_the_halo():
    part = ExpertPartition((2, 7), (1, 3), overlap=1)
    assert part.owner.view(2, 7)[0].tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert part.member.view(3, 2, 7)[:, 0].int().tolist() == [[1, 1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1, 0], [0, 0, 0, 0, 1, 1, 1]]
    grid = ExpertPartition((3, 4, 6), (1, 2, 3))
    assert torch.equal(grid.member.sum(0), torch.ones(72, dtype=torch.long))  # no overlap: a partition
    assert torch.equal(grid.member.float().argmax(0), grid.owner)
