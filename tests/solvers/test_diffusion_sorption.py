import math

import pytest
import torch

from surrogate.errors import InputError
from surrogate.solvers.diffusion_sorption import DiffusionSorption, SorptionCoefficients, random_initial_condition

LINEAR = SorptionCoefficients(k_f=0.0)  # R = 1: u_t = D u_xx


def exact_linear(x: torch.Tensor, t: float, d: float, terms: int = 400) -> torch.Tensor:
    """u_t = D u_xx, u(0, t) = 1, u_x(1, t) = 0, u(x, 0) = 0: the Fourier series."""
    m = torch.arange(terms, dtype=torch.float64)[:, None]
    lam = (2 * m + 1) * math.pi / 2
    return 1 - (2 / lam * torch.sin(lam * x) * torch.exp(-d * lam**2 * t)).sum(0)


def error(n_nodes: int, t_end: float = 200.0) -> float:
    solver = DiffusionSorption(n_nodes, t_end, LINEAR)
    state = solver.step(solver.init(torch.zeros(1, n_nodes, dtype=torch.float64)))
    return float((state.fields[0, 0] - exact_linear(solver.x, t_end, LINEAR.diffusivity)).abs().max())


def test_linear_limit_matches_the_series_solution_at_second_order():
    errs = [error(n) for n in (17, 33, 65)]
    assert errs[-1] < 2e-4
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert all(o > 1.8 for o in orders), (errs, orders)


def test_sorption_retards_the_front():
    """With the Freundlich isotherm the contaminant front moves slower than plain diffusion."""
    u0 = random_initial_condition(2, 65, seed=0)
    plain, sorbing = DiffusionSorption(65, 100.0, LINEAR), DiffusionSorption(65, 100.0)
    u_plain = plain.step(plain.init(u0)).fields
    u_sorb = sorbing.step(sorbing.init(u0)).fields
    assert float((u_sorb - u0[:, None]).clamp(min=0).sum()) < 0.8 * float((u_plain - u0[:, None]).clamp(min=0).sum())
    assert float(u_sorb.min()) > 0 and float(u_sorb.max()) <= 1 + 1e-12  # maximum principle


def test_bad_arguments():
    with pytest.raises(InputError, match="n_nodes: expected at least 3"):
        DiffusionSorption(2, 1.0)
    with pytest.raises(InputError, match=r"expected u0 \(B, 9\)"):
        DiffusionSorption(9, 1.0).init(torch.zeros(2, 8))
