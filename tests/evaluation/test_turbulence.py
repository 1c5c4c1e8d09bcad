"""Channel statistics on synthetic fields whose statistics are known in closed form."""

import numpy as np
import pytest
import torch

from surrogate.errors import InputError
from surrogate.evaluation.turbulence import channel_statistics, law_of_the_wall_errors, plot_statistics, rollout_stability

NX, NY, NZ = 16, 64, 8
NU = 1 / 180  # Re_tau = 180 with u_tau = 1, h = 1


def stretched_y(n: int = NY, beta: float = 2.2) -> torch.Tensor:
    """Cell centres of a tanh-stretched grid on (0, 2), refined at both walls."""
    s = (torch.arange(n, dtype=torch.float64) + 0.5) / n * 2 - 1
    return 1 + torch.tanh(beta * s) / np.tanh(beta)


def reichardt(y_plus: torch.Tensor) -> torch.Tensor:
    """Reichardt's composite law: U+ = y+ at the wall, the log law farther out."""
    return torch.log1p(0.41 * y_plus) / 0.41 + 7.8 * (1 - torch.exp(-y_plus / 11) - y_plus / 11 * torch.exp(-y_plus / 3))


def synthetic(a: float = 0.3, c: float = 0.5, mean: str = "reichardt") -> tuple[torch.Tensor, torch.Tensor]:
    y = stretched_y()
    d = torch.minimum(y, 2 - y)
    u_mean = reichardt(d / NU) if mean == "reichardt" else 1.5 * 20 * y * (2 - y) / 2
    x = torch.arange(NX, dtype=torch.float64) / NX * 2 * np.pi
    g = torch.sin(np.pi * y / 2) ** 2  # (Ny,)
    up = a * torch.cos(3 * x)[:, None, None] * g[None, :, None] * torch.ones(NZ)  # (Nx, Ny, Nz)
    sign = torch.where(y < 1, 1.0, -1.0).double()  # v' flips with the wall normal, so -u'v' > 0 on both halves
    vp = -c * up * sign[None, :, None]
    z = torch.arange(NZ, dtype=torch.float64) / NZ * 2 * np.pi
    wp = 0.2 * torch.sin(2 * z)[None, None, :].expand(NX, NY, NZ)
    fields = torch.stack([u_mean[None, :, None] + up, vp, wp, torch.zeros_like(up)])[None]  # (1, 4, Nx, Ny, Nz)
    return fields, y


def test_wall_units_profiles_and_laws_of_the_wall():
    fields, y = synthetic()
    s = channel_statistics(fields, y, NU)
    assert s.u_tau == pytest.approx(1.0, rel=0.02) and s.re_tau == pytest.approx(180, rel=0.02)
    assert s.y_plus[0] < 1 and s.y_plus[-1] == pytest.approx(180 * float(stretched_y()[NY // 2 - 1]), rel=0.02)
    errors = law_of_the_wall_errors(s)
    assert errors["viscous_sublayer"] < 0.1 and errors["log_law"] < 0.05
    # rms and Reynolds stress: u' = a cos(3x) g(y) has rms a g / sqrt(2); -u'v' = c a^2 g^2 / 2.
    g = torch.sin(np.pi * y / 2).square()[: NY // 2].numpy()
    np.testing.assert_allclose(s.u_rms, 0.3 * g / np.sqrt(2) / s.u_tau, rtol=1e-6)
    np.testing.assert_allclose(s.v_rms, 0.5 * 0.3 * g / np.sqrt(2) / s.u_tau, rtol=1e-6)
    np.testing.assert_allclose(s.w_rms, 0.2 / np.sqrt(2) / s.u_tau, rtol=1e-6)
    np.testing.assert_allclose(s.uv, 0.5 * 0.09 * g**2 / 2 / s.u_tau**2, rtol=1e-6)


def test_spectra_hold_the_variance_at_the_right_wavenumbers():
    fields, y = synthetic()
    s = channel_statistics(fields, y, NU, spectrum_y_plus=15.0)
    j = int(np.argmin(np.abs(s.y_plus - 15)))
    variance = (0.3 * np.sin(np.pi * float(y[j]) / 2) ** 2) ** 2 / 2
    assert s.spectrum_x[3] == pytest.approx(variance, rel=1e-6) and np.delete(s.spectrum_x, 3).max() < 1e-12
    assert s.spectrum_z[0] == pytest.approx(variance, rel=1e-6) and s.spectrum_z[1:].max() < 1e-12  # u' does not vary in z


def test_a_laminar_profile_fails_the_log_law():
    fields, y = synthetic(mean="laminar")
    assert law_of_the_wall_errors(channel_statistics(fields, y, NU))["log_law"] > 0.3


def test_rollout_stability():
    ok = rollout_stability(torch.linspace(1.0, 1.5, 401))
    assert ok == {"steps": 400.0, "finite": 1.0, "stable": 1.0, "max_energy_ratio": 1.5, "min_energy_ratio": 1.0}
    blown = rollout_stability(torch.tensor([1.0, 2.0, float("inf")]))
    assert blown["finite"] == 0.0 and blown["stable"] == 0.0
    assert rollout_stability(torch.tensor([1.0, 0.05]))["stable"] == 0.0  # energy lost counts too


def test_bad_channel_input_is_refused(tmp_path):
    fields, y = synthetic()
    bad_y = y.clone()
    bad_y[10] = bad_y[9]
    with pytest.raises(InputError, match=r"not strictly increasing: y\[9\]"):
        channel_statistics(fields, bad_y, NU)
    with pytest.raises(InputError, match=r"expected \(64,\)"):
        channel_statistics(fields, y[:-1], NU)
    with pytest.raises(InputError, match="u, v, w first"):
        channel_statistics(fields[:, :2], y, NU)
    with pytest.raises(InputError, match="within the walls"):
        channel_statistics(fields, y * 2, NU)
    # A grid that includes both walls (u = 0 there) gives the statistics of its inner points.
    with_walls = torch.cat([torch.zeros_like(fields[:, :, :, :1]), fields, torch.zeros_like(fields[:, :, :, :1])], dim=3)
    walled = channel_statistics(with_walls, torch.cat([torch.zeros(1, dtype=y.dtype), y, 2 * torch.ones(1, dtype=y.dtype)]), NU)
    np.testing.assert_allclose(walled.u_plus, channel_statistics(fields, y, NU).u_plus)
    plot_statistics({"synthetic": channel_statistics(fields, y, NU)}, tmp_path / "stats.png")
    assert (tmp_path / "stats.png").stat().st_size > 10_000
