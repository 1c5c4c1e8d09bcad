"""Turbulent channel statistics: wall units, mean profile, rms, Reynolds stress, spectra, stability.

The channel lies between walls at y = 0 and y = 2 h (periodic in x and z). Statistics average
over x, z, the samples (snapshots, trajectories) and the two halves of the channel (folded
onto the distance to the nearest wall), as DNS databases report them.

Wall units: u_tau = sqrt(nu dU/dy at the wall), y+ = y u_tau / nu, U+ = U / u_tau. The wall
shear comes from the first point off each wall (U = 0 at the wall), so the first point must
sit in the viscous sublayer (y+ < 2 or so) for it to be accurate.

Shapes:
    fields  (S, C, Nx, Ny, Nz)  S samples; channels u, v, w first (p may follow)
    y       (Ny,)               strictly increasing, within [0, 2 h] (points on the walls are dropped)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from surrogate.errors import InputError

KAPPA, B_LOG = 0.41, 5.2


@dataclass
class ChannelStatistics:
    """Profiles against the wall distance (folded half channel, (Ny // 2,) each) in wall units."""

    y_plus: np.ndarray
    u_plus: np.ndarray
    u_rms: np.ndarray
    v_rms: np.ndarray
    w_rms: np.ndarray
    uv: np.ndarray  # -u'v' / u_tau^2
    u_tau: float
    re_tau: float
    spectrum_x: np.ndarray  # E_uu(k_x) at the chosen y, (Nx // 2 + 1,)
    spectrum_z: np.ndarray  # E_uu(k_z), (Nz // 2 + 1,)


def check_channel(fields: Tensor, y: Tensor, half_height: float) -> None:
    if fields.ndim != 5 or fields.shape[1] < 3:
        raise InputError(f"channel fields: expected (S, C >= 3, Nx, Ny, Nz) with u, v, w first, got {tuple(fields.shape)}")
    if y.ndim != 1 or len(y) != fields.shape[3]:
        raise InputError(f"channel y grid: expected ({fields.shape[3]},) for Ny = {fields.shape[3]}, got {tuple(y.shape)}")
    if not bool((y[1:] > y[:-1]).all()):
        i = int(torch.nonzero(y[1:] <= y[:-1])[0, 0])
        raise InputError(f"channel y grid is not strictly increasing: y[{i}] = {float(y[i]):.6g} >= y[{i + 1}] = {float(y[i + 1]):.6g}")
    if float(y[0]) < 0 or float(y[-1]) > 2 * half_height:
        raise InputError(f"channel y grid must lie within the walls [0, {2 * half_height}]; got [{float(y[0])}, {float(y[-1])}]")


def fold(profile: Tensor) -> Tensor:
    """(Ny,) symmetric average of the two halves, ordered from the wall: (Ny // 2,)."""
    n = profile.shape[0] // 2
    return 0.5 * (profile[:n] + profile.flip(0)[:n])


def channel_statistics(fields: Tensor, y: Tensor, nu: float, half_height: float = 1.0, spectrum_y_plus: float = 15.0) -> ChannelStatistics:
    """Mean profile, rms, Reynolds shear stress and streamwise-velocity spectra in wall units."""
    check_channel(fields, y, half_height)
    inside = (y > 0) & (y < 2 * half_height)  # grids that include the walls (Chebyshev-Gauss-Lobatto): drop them
    f = fields[:, :3, :, inside].double()
    y = y[inside].double()
    mean = f.mean(dim=(0, 2, 4))  # (3, Ny)
    fluct = f - mean[None, :, None, :, None]
    var = fluct.square().mean(dim=(0, 2, 4))  # (3, Ny)
    uv = (fluct[:, 0] * fluct[:, 1]).mean(dim=(0, 1, 3))  # (Ny,)
    wall_distance = fold(torch.minimum(y, 2 * half_height - y))
    u_mean = fold(mean[0])
    # The first point off each wall, U = 0 on the wall: dU/dy ~ U(y_1) / y_1.
    shear = 0.5 * (mean[0, 0] / y[0] + mean[0, -1] / (2 * half_height - y[-1]))
    if float(shear) <= 0:
        raise InputError(f"channel statistics: the mean wall shear {float(shear):.3g} is not positive (is u the first channel?)")
    u_tau = float(torch.sqrt(nu * shear))
    # -u'v' is antisymmetric about the centreline: fold with a sign flip on the upper half.
    n = len(y) // 2
    uv_folded = 0.5 * (uv[:n] - uv.flip(0)[:n])
    j = int(torch.argmin((wall_distance * u_tau / nu - spectrum_y_plus).abs()))
    spec_x = _spectrum(fluct[:, 0, :, j, :], dim=1) + _spectrum(fluct[:, 0, :, -1 - j, :], dim=1)
    spec_z = _spectrum(fluct[:, 0, :, j, :], dim=2) + _spectrum(fluct[:, 0, :, -1 - j, :], dim=2)
    sq = lambda t: (fold(t).clamp_min(0).sqrt() / u_tau).numpy()  # noqa: E731
    return ChannelStatistics(
        y_plus=(wall_distance * u_tau / nu).numpy(),
        u_plus=(u_mean / u_tau).numpy(),
        u_rms=sq(var[0]),
        v_rms=sq(var[1]),
        w_rms=sq(var[2]),
        uv=(-uv_folded / u_tau**2).numpy(),
        u_tau=u_tau,
        re_tau=u_tau * half_height / nu,
        spectrum_x=(0.5 * spec_x).numpy(),
        spectrum_z=(0.5 * spec_z).numpy(),
    )


def _spectrum(plane: Tensor, dim: int) -> Tensor:
    """One-sided 1D energy spectrum along `dim` of (S, Nx, Nz) planes, averaged over the rest;
    its sum over wavenumbers is the variance (Parseval)."""
    n = plane.shape[dim]
    c = torch.fft.rfft(plane, dim=dim) / n
    e = c.abs().square()
    e = e.movedim(dim, -1).reshape(-1, e.shape[dim]).mean(0)
    e[1 : (n + 1) // 2] *= 2  # both signs of k, except the mean and (even n) the Nyquist mode
    return e


def law_of_the_wall_errors(stats: ChannelStatistics) -> dict[str, float]:
    """Largest relative deviation of U+ from U+ = y+ (y+ < 5) and from the log law
    U+ = ln(y+) / 0.41 + 5.2 (30 < y+ < 150); NaN where the grid has no point in a range."""
    yp, up = stats.y_plus, stats.u_plus
    out = {}
    for name, sel, law in (
        ("viscous_sublayer", yp < 5, yp),
        ("log_law", (yp > 30) & (yp < 150), np.log(np.maximum(yp, 1e-12)) / KAPPA + B_LOG),
    ):
        out[name] = float(np.max(np.abs(up[sel] / law[sel] - 1))) if sel.any() else float("nan")
    return out


def rollout_stability(energies: Tensor, bound: float = 10.0) -> dict[str, float]:
    """Blow-up check of a long rollout from its kinetic energy per step (T,): every value finite
    and within [1 / bound, bound] times the first."""
    e = energies.double()
    finite = bool(torch.isfinite(e).all())
    ratio = e / e[0]
    within = finite and bool(((ratio <= bound) & (ratio >= 1 / bound)).all())
    return {
        "steps": float(len(e) - 1),
        "finite": float(finite),
        "stable": float(within),
        "max_energy_ratio": float(ratio.max()) if finite else float("inf"),
        "min_energy_ratio": float(ratio.min()) if finite else float("nan"),
    }


def plot_statistics(stats: dict[str, ChannelStatistics], path) -> None:
    """Mean profile (with the laws of the wall), rms, Reynolds stress and spectra of each source."""
    from matplotlib.figure import Figure  # no pyplot: the caller's plotting state stays as it was

    fig = Figure(figsize=(18, 4))
    ax = fig.subplots(1, 4)
    for name, s in stats.items():
        ax[0].semilogx(s.y_plus, s.u_plus, label=name)
        for comp, style in ((s.u_rms, "-"), (s.v_rms, "--"), (s.w_rms, ":")):
            ax[1].plot(s.y_plus, comp, style, label=f"{name}" if style == "-" else None)
        ax[2].plot(s.y_plus, s.uv, label=name)
        ax[3].loglog(np.arange(1, len(s.spectrum_x)), s.spectrum_x[1:], label=f"{name} k_x")
        ax[3].loglog(np.arange(1, len(s.spectrum_z)), s.spectrum_z[1:], "--", label=f"{name} k_z")
    yp = np.logspace(-1, np.log10(max(s.y_plus.max() for s in stats.values())), 100)
    ax[0].semilogx(yp[yp < 12], yp[yp < 12], "k:", label="U+ = y+")
    ax[0].semilogx(yp[yp > 10], np.log(yp[yp > 10]) / KAPPA + B_LOG, "k--", label="log law")
    for a, title in zip(ax, ("U+ (y+)", "u', v', w' rms (+)", "-u'v' (+)", "E_uu (k)")):
        a.set_title(title)
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
