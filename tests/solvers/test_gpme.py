import math

import numpy as np
import pytest
import torch

from surrogate.errors import InputError
from surrogate.solvers.gpme import GPME, exact_mass, exact_solution, stefan_alpha, stefan_front


def error(case, n, param, t=0.5, substep=None):
    solver = GPME(case, n, dt=t, max_substep=substep or 0.2 / n)
    state, inflow = solver.flux_step(solver.init(param, 1))
    u = state.fields[0, 0].numpy()
    return np.abs(u - exact_solution(case, solver.x.numpy(), t, param)).mean(), solver, state, inflow


def test_heat_converges_at_second_order():
    errs = [error("heat", n, 2.0, substep=0.5 / 200)[0] for n in (16, 32, 64)]
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert min(orders) > 1.8, orders


def test_porous_medium_converges_at_its_order():
    errs = [error("pme", n, 3.0)[0] for n in (32, 64, 128)]
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert min(orders) > 1.0, orders
    assert errs[-1] < 1e-3


def test_stefan_front_and_profile_converge():
    coarse = error("stefan", 32, 0.6, substep=10 / 32**2)[0]
    fine, solver, state, _ = error("stefan", 128, 0.6, substep=10 / 128**2)
    assert fine < 0.25 * coarse and fine < 0.01
    front = float(stefan_front(state.fields[:, 0], solver.x, state.params[:, 0])[0])
    assert abs(front - stefan_alpha(0.6) * math.sqrt(0.5)) < 3 * solver.dx


@pytest.mark.parametrize("case,param", [("heat", 3.0), ("pme", 2.0), ("stefan", 0.7)])
def test_mass_changes_only_by_boundary_flux(case, param):
    solver = GPME(case, 64, dt=0.1, max_substep=0.01)
    state = solver.init(torch.tensor([param, param * 0.9]))
    m0 = state.fields.sum((1, 2)) * solver.dx
    total_in = torch.zeros(2, dtype=torch.float64)
    for _ in range(5):
        state, inflow = solver.flux_step(state)
        total_in += inflow
    m = state.fields.sum((1, 2)) * solver.dx
    torch.testing.assert_close(m - m0, total_in, rtol=0, atol=1e-12)
    if case == "pme":
        assert float(m[0]) == pytest.approx(exact_mass(case, 0.5, param), rel=0.03)


def test_stefan_alpha_solves_its_equation():
    from scipy.special import erf

    for u_star in (0.2, 0.5, 0.9):
        z = stefan_alpha(u_star) / 2
        assert u_star * erf(z) * z * math.exp(z * z) == pytest.approx((1 - u_star) / math.sqrt(math.pi), rel=1e-10)


def test_bad_parameters():
    with pytest.raises(InputError, match="u_star must lie in \\(0, 1\\)"):
        GPME("stefan", 16).init(1.5, 1)
    with pytest.raises(InputError, match="degree m must be >= 1"):
        GPME("pme", 16).init(0.5, 1)
    with pytest.raises(InputError, match="expected one of"):
        GPME("burgers", 16)
