import math

import pytest
import torch
from scipy.optimize import brentq

from surrogate.errors import InputError
from surrogate.solvers.diffusion_sorption import DiffusionSorption, SorptionCoefficients, random_initial_condition

LINEAR = SorptionCoefficients(k_f=0.0)  # R = 1: u_t = D u_xx


def exact_linear(x: torch.Tensor, t: float, d: float, terms: int = 400) -> torch.Tensor:
    """u_t = D u_xx, u(0, t) = 1, PDEBench's outflow end in its continuum form u(1, t) + D u_x(1, t) = 0,
    u(x, 0) = 0: steady state 1 - x / (1 + D) plus the series over sin(l x), sin l + D l cos l = 0."""
    lam = torch.tensor(
        [brentq(lambda z: math.sin(z) + d * z * math.cos(z), (m - 0.5) * math.pi, m * math.pi) for m in range(1, terms + 1)],
        dtype=torch.float64,
    )[:, None]
    # coefficients of v0 = -(1 - x / (1 + D)) in the (orthogonal) eigenfunctions, in closed form
    int_sin = (1 - torch.cos(lam)) / lam
    int_x_sin = torch.sin(lam) / lam**2 - torch.cos(lam) / lam
    norm = 0.5 - torch.sin(2 * lam) / (4 * lam)
    c = -(int_sin - int_x_sin / (1 + d)) / norm
    return 1 - x / (1 + d) + (c * torch.sin(lam * x) * torch.exp(-d * lam**2 * t)).sum(0)


def error(n_nodes: int, t_end: float) -> float:
    solver = DiffusionSorption(n_nodes, t_end, LINEAR)
    state = solver.step(solver.init(torch.zeros(1, n_nodes, dtype=torch.float64)))
    return float((state.fields[0, 0] - exact_linear(solver.x, t_end, LINEAR.diffusivity)).abs().max())


def test_outflow_end_is_pdebench_cauchy_condition():
    """PDEBench's simulator puts D (u_{J-2} - u_{J-1}) / h one spacing past the last node: the
    discrete steady state of the linear limit is then exactly u_j = 1 - x_j / (1 + h + D)."""
    for n in (9, 33):
        solver = DiffusionSorption(n, 1.0, LINEAR)
        steady = 1 - solver.x / (1 + solver.h + LINEAR.diffusivity)
        assert float(solver.rate(steady[None]).abs().max()) < 1e-13
        zero_flux = 1 - 0 * solver.x  # the old end (u_x = 0) is no steady state of this one
        assert float(solver.rate(0.5 * zero_flux[None]).abs().max()) > 1e-3 * LINEAR.diffusivity


def test_linear_limit_converges_to_the_series_solution_with_the_outflow_end():
    """At t = 1000 the front has reached x = 1 (sqrt(D t) = 0.7), so the end condition matters; the
    scheme converges to the continuum solution, at first order at least (the ghost value sits h out)."""
    errs = [error(n, 1000.0) for n in (17, 33, 65)]
    assert errs[-1] < 0.02  # 0.057, 0.030, 0.015 for 17, 33, 65 nodes
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert all(o > 0.9 for o in orders), (errs, orders)


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
