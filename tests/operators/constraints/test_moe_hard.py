import pytest
import torch

from surrogate.errors import InputError
from surrogate.operators.constraints.moe_hard import MoEHardConstraint


def residual(w, a, y):
    """A nonlinear residual per expert: basis values a (M, N), data y (M,)."""
    u = a @ w
    return u + 0.3 * u**3 - y


def make(seed=0, experts=3, m=12, n=4):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(experts, m, n, generator=gen, dtype=torch.float64) / 2
    y = torch.randn(experts, m, generator=gen, dtype=torch.float64) / 2
    return a, y


def test_solution_is_stationary():
    a, y = make()
    layer = MoEHardConstraint(residual, reg=1e-3)
    w = layer.solve(a, y)
    for e in range(3):
        we = w[e].clone().requires_grad_(True)
        r = residual(we, a[e], y[e])
        obj = 0.5 * (r * r).sum() + 0.5e-3 * (we * we).sum()
        (g,) = torch.autograd.grad(obj, we)
        assert float(g.abs().max()) < 1e-8


def test_implicit_gradient_matches_finite_differences():
    a, y = make(seed=1)
    c = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    layer = MoEHardConstraint(residual, reg=1e-3, tol=1e-11, max_iter=200)

    def loss(a_, y_):
        return (layer.solve(a_, y_) * c).sum()

    a_req, y_req = a.clone().requires_grad_(True), y.clone().requires_grad_(True)
    ga, gy = torch.autograd.grad(loss(a_req, y_req), (a_req, y_req))
    eps = 1e-5
    for idx in [(0, 0, 0), (1, 5, 2), (2, 11, 3)]:
        d = torch.zeros_like(a)
        d[idx] = eps
        fd = (loss(a + d, y) - loss(a - d, y)) / (2 * eps)
        assert float(ga[idx]) == pytest.approx(float(fd), rel=1e-5, abs=1e-8)
    for idx in [(0, 3), (2, 7)]:
        d = torch.zeros_like(y)
        d[idx] = eps
        fd = (loss(a, y + d) - loss(a, y - d)) / (2 * eps)
        assert float(gy[idx]) == pytest.approx(float(fd), rel=1e-5, abs=1e-8)


def test_non_convergence_is_an_error_or_a_logged_fallback(caplog):
    a, y = make()
    with pytest.raises(InputError, match="did not converge for 3 of 3 experts in 1 iterations"):
        MoEHardConstraint(residual, max_iter=1).solve(a, y)
    w = MoEHardConstraint(residual, max_iter=1, on_failure="warn").solve(a, y)
    assert w.shape == (3, 4) and "did not converge" in caplog.text
