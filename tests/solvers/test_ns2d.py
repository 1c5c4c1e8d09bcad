import math

import pytest
import torch

from surrogate.errors import InputError
from surrogate.solvers.ns2d import NS2D, gaussian_random_field


def taylor_green(n: int, m: int = 1) -> torch.Tensor:
    """Vorticity 2k sin(kx) sin(ky) of the Taylor-Green vortex, k = 2 pi m."""
    x = torch.arange(n, dtype=torch.float64) / n
    k = 2 * math.pi * m
    return 2 * k * torch.sin(k * x[:, None]) * torch.sin(k * x[None, :])


@pytest.mark.parametrize("m", [1, 2])
def test_taylor_green_decays_exactly(m):
    nu, n = 0.01, 32
    solver = NS2D(n, dt=0.1, forcing=torch.zeros(n, n), max_substep=1e-3)
    w0 = taylor_green(n, m)
    state = solver.init(w0[None], nu)
    for _ in range(10):
        state = solver.step(state)
    k2 = 2 * (2 * math.pi * m) ** 2
    exact = w0 * math.exp(-nu * k2 * float(state.time[0]))
    rel = float((state.fields[0, 0] - exact).norm() / exact.norm())
    assert float(state.time[0]) == pytest.approx(1.0)
    assert rel < 1e-5
    # The decay is real: the field lost a sizeable fraction of its amplitude.
    assert float(state.fields.abs().max()) < 0.8 * float(w0.abs().max())


def smooth_vorticity(n: int) -> torch.Tensor:
    """An analytic, not band-limited, zero-mean initial vorticity."""
    x = torch.arange(n, dtype=torch.float64) / n
    X, Y = torch.meshgrid(x, x, indexing="ij")
    w = torch.exp(torch.cos(2 * math.pi * X)) * torch.sin(2 * math.pi * Y) + 0.5 * torch.cos(2 * math.pi * (X + 2 * Y))
    return w - w.mean()


def run(n: int, max_substep: float, t_end: float = 0.5) -> torch.Tensor:
    solver = NS2D(n, dt=t_end, max_substep=max_substep, cfl=1.0)
    state = solver.step(solver.init(smooth_vorticity(n)[None], 0.01))
    return state.fields[0, 0]


def test_spectral_convergence_in_space():
    ref = run(64, 1e-3)
    errors = []
    for n in (8, 16, 32):
        w = run(n, 1e-3)
        errors.append(float((w - ref[:: 64 // n, :: 64 // n]).abs().max()))
    # Exponential convergence: each doubling gains more than the previous one did.
    assert errors[0] / errors[1] > 4
    assert errors[1] / errors[2] > errors[0] / errors[1]
    assert errors[2] < 1e-8


def test_second_order_in_time():
    ref = run(32, 0.5 / 512)
    errs = [float((run(32, 0.5 / m) - ref).abs().max()) for m in (16, 32, 64)]
    for coarse, fine in zip(errs, errs[1:]):
        assert 3.5 < coarse / fine < 4.5


def test_grf_matches_its_covariance():
    """Mode variances of the random field follow sigma^2 (4 pi^2 |k|^2 + tau^2)^-alpha."""
    gen = torch.Generator().manual_seed(0)
    n, alpha, tau = 32, 2.5, 7.0
    w = gaussian_random_field(2000, n, gen, alpha, tau)
    assert abs(float(w.mean())) < 1e-3
    power = torch.fft.fft2(w).abs().square().mean(0) / n**4  # E|w_k|^2 with unit-normalized DFT
    sigma2 = tau ** (2 * alpha - 2)
    for kx, ky in [(1, 0), (1, 1), (2, 3)]:
        # sqrt(2) in the amplitude, E|xi|^2 = 2 for complex noise, 1/2 from taking the real part.
        theory = 2 * sigma2 * (4 * math.pi**2 * (kx**2 + ky**2) + tau**2) ** (-alpha)
        assert float(power[kx, ky]) == pytest.approx(theory, rel=0.1)


def test_batched_viscosities_are_independent():
    """Simulations of a batch differ only through the shared CFL sub-step (time-discretization level)."""
    n = 16
    solver = NS2D(n, dt=0.2)
    w0 = gaussian_random_field(2, n, torch.Generator().manual_seed(1))
    both = solver.step(solver.init(w0, torch.tensor([1e-3, 1e-2])))
    one = solver.step(solver.init(w0[1:], 1e-2))
    torch.testing.assert_close(both.fields[1:], one.fields, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(both.fields[0], both.fields[1])


def test_bad_input():
    solver = NS2D(16)
    with pytest.raises(InputError, match="expected \\(B, 16, 16\\)"):
        solver.init(torch.zeros(1, 8, 8), 1e-3)
    with pytest.raises(InputError, match="NaN"):
        solver.init(torch.full((1, 16, 16), float("nan")), 1e-3)
    with pytest.raises(InputError, match="positive"):
        solver.init(torch.zeros(1, 16, 16), -1.0)
    with pytest.raises(InputError, match="even"):
        NS2D(15)
