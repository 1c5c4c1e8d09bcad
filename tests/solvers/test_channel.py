"""The channel LES/DNS solver: exact laminar flows, second-order convergence, a divergence-free
3D flow, the flow-rate drive, transition to turbulence, the SGS closures, and bad input.

The law of the wall at Re_tau = 180 takes minutes: `benchmarks/channel_law_of_wall.py`, its
JSON in `benchmarks/results/`."""

import math

import pytest
import torch

from surrogate.errors import InputError
from surrogate.solvers.channel import ChannelGrid, ChannelSolver, laminar_profile, perturbed_initial, startup_profile
from surrogate.solvers.channel_sgs import dynamic_smagorinsky, filter_test_scale, wale


def mean_u(state):
    return state.fields[0, 0].mean((0, 2))


def decaying_mode_error(ny: int, re_tau: float = 10.0, t_end: float = 2.0) -> float:
    """Poiseuille flow plus its slowest Stokes mode sin(pi y / 2), which decays as exp(-(pi/2)^2 t / Re_tau)."""
    grid = ChannelGrid(4, ny, 4, stretch=1.5)
    solver = ChannelSolver(grid, dt=0.1, closure="none")
    y = grid.centres()
    f = torch.zeros(1, 3, 4, ny, 4, dtype=torch.float64)
    f[:, 0] = (laminar_profile(y, re_tau) + 3 * torch.sin(math.pi * y / 2))[None, :, None]
    state = solver.init(f, re_tau)
    for _ in range(round(t_end / solver.dt)):
        state = solver.step(state)
    exact = laminar_profile(y, re_tau) + 3 * torch.sin(math.pi * y / 2) * math.exp(-((math.pi / 2) ** 2) * t_end / re_tau)
    return float((mean_u(state) - exact).abs().max() / exact.abs().max())


def test_laminar_flow_is_exact_to_second_order():
    errors = [decaying_mode_error(ny) for ny in (16, 32, 64)]
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert errors[1] < 2e-3 and errors[2] < 5e-4, errors  # 5.2e-3, 1.3e-3, 3.3e-4 (relative) when written
    assert min(orders) > 1.9, orders  # 1.97, 2.00


def test_poiseuille_startup_from_rest_matches_the_series_solution():
    grid = ChannelGrid(4, 64, 4, stretch=1.5)
    solver = ChannelSolver(grid, dt=0.1, closure="none")
    state = solver.init(torch.zeros(1, 3, 4, 64, 4), 10.0)
    y = grid.centres()
    for t_check in (1.0, 10.0):
        while float(state.time[0]) < t_check - 1e-9:
            state = solver.step(state)
        exact = startup_profile(y, 10.0, t_check)
        assert float((mean_u(state) - exact).abs().max() / exact.max()) < 1e-3  # 2.5e-4, 5.0e-4 when written


@pytest.mark.parametrize("closure", ["none", "wale", "dsm"])
def test_3d_flow_stays_divergence_free_and_the_flow_rate_drive_holds_the_bulk_velocity(closure):
    grid = ChannelGrid(12, 16, 8)
    solver = ChannelSolver(grid, dt=0.05, closure=closure, drive="flow_rate")
    state = solver.init(perturbed_initial(grid, 2, 60.0, amplitude=0.2, seed=1), 60.0)
    ub0 = state.params[:, 1].clone()
    for _ in range(4):
        state = solver.step(state)
    u, v, w = solver._split(state.fields)
    assert float(solver.divergence(state).max()) < 1e-9 * float(state.fields[:, 0].abs().max()) * grid.ny
    assert torch.allclose(solver.bulk_velocity(u), ub0, rtol=1e-12)
    assert float(state.fields[:, 1].abs().max()) > 0.1  # a genuinely 3D flow
    assert not torch.equal(state.fields[0], state.fields[1])  # the two simulations stay independent


def test_perturbed_laminar_flow_becomes_turbulent():
    """Flow-rate drive at the bulk velocity of turbulence at Re_tau = 180: the laminar state has
    Re_tau = sqrt(3 Re_tau,nom U_b) ~ 92; the disturbances break down and the wall shear rises
    to that of turbulence (92 -> 192 at t = 1.5 when written), with sustained fluctuations."""
    grid = ChannelGrid(12, 24, 12)
    solver = ChannelSolver(grid, dt=0.25, closure="dsm", drive="flow_rate")
    state = solver.init(perturbed_initial(grid, 1, 180.0, amplitude=0.3, mean="laminar", seed=3), 180.0)

    def re_tau(s):
        um, y1 = mean_u(s), float(solver.yc[0])
        return 180.0 * math.sqrt(0.5 * float(um[0] + um[-1]) / y1 / 180.0)

    re0 = re_tau(state)
    for _ in range(6):
        state = solver.step(state)
    fluct = state.fields[0, :3] - state.fields[0, :3].mean((1, 3), keepdim=True)
    assert re0 < 95 and re_tau(state) > 160, (re0, re_tau(state))
    assert float(fluct[1].square().mean().sqrt()) > 0.4  # wall-normal turbulent fluctuations, in u_tau units


def test_wale_vanishes_in_pure_shear_and_dsm_in_laminar_flow():
    g = torch.zeros(1, 3, 3, 4, 5, 4, dtype=torch.float64)
    g[:, 0, 1] = 7.0  # du/dy only
    assert float(wale(g, torch.ones(5, dtype=torch.float64)).abs().max()) == 0.0
    vel = torch.zeros(1, 3, 4, 5, 4, dtype=torch.float64)
    vel[:, 0] = torch.linspace(0, 1, 5)[None, :, None] ** 2
    assert float(dynamic_smagorinsky(g, vel, torch.ones(5, dtype=torch.float64)).abs().max()) == 0.0
    rot = torch.zeros_like(g)
    rot[:, 0, 1], rot[:, 1, 0], rot[:, 2, 2] = 1.0, 2.0, 0.5  # strain plus rotation: WALE is positive
    assert float(wale(rot, torch.ones(5, dtype=torch.float64)).min()) > 0


def test_dsm_gives_no_eddy_viscosity_to_a_flow_resolved_inside_the_test_filter():
    """Regression (issue 23): Germano's identity gives L = 0, hence C = 0, when the test filter
    leaves the velocity and its products unchanged: the DNS limit, where no model is wanted.
    Random Fourier modes at |k| <= N/12 in x and z (products at |k| <= N/6) with wall-normal
    profiles and a mean shear: the old trapezoidal test filter damped these resolved modes by
    cos^2(k dx / 2) and gave nu_t up to 3.6e-3 here; the sharp cutoff at N/6 gives none. A mode
    beyond N/6 is removed."""
    n, ny = 24, 6
    x = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    y = torch.linspace(0.1, 0.9, ny, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    vel = torch.zeros(1, 3, n, ny, n, dtype=torch.float64)
    grad = torch.zeros(1, 3, 3, n, ny, n, dtype=torch.float64)
    for _ in range(6):
        kx, kz = (int(torch.randint(1, n // 12 + 1, (1,), generator=gen)) for _ in range(2))
        amp, phase = torch.randn(3, generator=gen, dtype=torch.float64), float(torch.rand(1, generator=gen)) * 6.28
        arg = kx * x[:, None, None] + kz * x[None, None, :] + phase  # (Nx, 1, Nz)
        for i in range(3):
            vel[0, i] += amp[i] * torch.sin(arg) * y[None, :, None]
            grad[0, i, 0] += amp[i] * kx * torch.cos(arg) * y[None, :, None]
            grad[0, i, 1] += amp[i] * torch.sin(arg) * torch.ones_like(y)[None, :, None]
            grad[0, i, 2] += amp[i] * kz * torch.cos(arg) * y[None, :, None]
    vel[0, 0] += 10 * y[None, :, None]  # mean shear
    grad[0, 0, 1] += 10.0
    nu_t = dynamic_smagorinsky(grad, vel, torch.full((ny,), 1e-3**0.5, dtype=torch.float64))
    assert float(nu_t.abs().max()) < 1e-12
    uu = vel[:, :, None] * vel[:, None, :]
    assert float((filter_test_scale(uu) - uu).abs().max()) < 1e-10
    hi = torch.sin(5 * x)[:, None, None].expand(n, ny, n)  # 5 > N/6
    assert float(filter_test_scale(hi).abs().max()) < 1e-12


def test_bad_input_is_refused_with_what_to_change():
    with pytest.raises(InputError, match=r"Re_tau = 590 .* y\+ = .* use ny >= \d+ \(now 16\)"):
        ChannelSolver(ChannelGrid(8, 16, 8), closure="none").init(torch.zeros(1, 3, 8, 16, 8), 590.0)
    with pytest.raises(InputError, match="closure 'smag'"):
        ChannelSolver(ChannelGrid(8, 16, 8), closure="smag")
    with pytest.raises(InputError, match=r"expected fields \(B, 3 or 4, 8, 16, 8\)"):
        ChannelSolver(ChannelGrid(8, 16, 8)).init(torch.zeros(1, 3, 8, 17, 8), 100.0)
    with pytest.raises(InputError, match="nx = 7"):
        ChannelGrid(7, 16, 8)


def test_generate_channel_cli_refuses_a_re_tau_beyond_the_grid(tmp_path):
    """(The data it writes is checked in tests/test_channel_training.py, which trains on it.)"""
    from tests.test_cli import cli

    res = cli("generate", "channel", "--out", tmp_path / "bad.h5", "--ny", 16, "--re-tau", 590)
    assert res.returncode == 2 and "use ny >=" in res.stdout and not (tmp_path / "bad.h5").exists()
