"""Figures of a rollout: snapshots (truth | prediction | error) and energy spectra."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from surrogate.datasets.atomic import atomic_path


def _save(fig: object, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")  # type: ignore[attr-defined]
    return path


def snapshots(path: Path, pred: np.ndarray, truth: np.ndarray, channel: str, steps: Sequence[int], c: int = 0) -> Path:
    """Rows of truth | prediction | error for `steps` (1-based) of channel index c; 1D as lines,
    3D as the plane through the middle of the last axis (x-y for a channel).

    Shapes: pred, truth (T, C, *space).
    """
    from matplotlib.figure import Figure  # no pyplot: the caller's plotting state stays as it was

    if pred.ndim == 5:  # (T, C, X, Y, Z): the mid-Z plane
        pred, truth = pred[..., pred.shape[-1] // 2], truth[..., truth.shape[-1] // 2]
    steps = [s for s in steps if 1 <= s <= pred.shape[0]]
    fig = Figure(figsize=(10, 3 * len(steps)))
    axes = fig.subplots(len(steps), 3, squeeze=False)
    lim = float(np.abs(truth[:, c]).max()) or 1.0
    for row, s in zip(axes, steps):
        p, t = pred[s - 1, c], truth[s - 1, c]
        for ax, field, title in zip(row, (t, p, p - t), ("truth", "prediction", "error")):
            if field.ndim == 1:
                ax.plot(field)
            else:
                vmax = lim if title != "error" else float(np.abs(p - t).max()) or 1.0
                im = ax.imshow(field.T, origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
                fig.colorbar(im, ax=ax, shrink=0.8)
            ax.set_title(f"{channel} {title}, step {s}")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path)


def energy_spectrum(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shell-summed power spectrum of a periodic 1D/2D field: (wavenumbers, energy)."""
    f = np.fft.fftn(field) / field.size
    power = np.abs(f) ** 2
    k = np.sqrt(sum(g**2 for g in np.meshgrid(*[np.fft.fftfreq(n, 1 / n) for n in field.shape], indexing="ij")))
    shells = np.rint(k).astype(int)
    e = np.bincount(shells.ravel(), power.ravel())
    kk = np.arange(len(e))
    keep = (kk > 0) & (kk <= min(field.shape) // 2)
    return kk[keep], e[keep]


def spectra(path: Path, pred: np.ndarray, truth: np.ndarray, channel: str, step: int, c: int = 0) -> Path:
    """Energy spectra of prediction and truth at one step (1-based)."""
    from matplotlib.figure import Figure  # no pyplot: the caller's plotting state stays as it was

    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    for field, label in ((truth[step - 1, c], "truth"), (pred[step - 1, c], "prediction")):
        k, e = energy_spectrum(field)
        ax.loglog(k, e, label=label)
    ax.set_xlabel("wavenumber")
    ax.set_ylabel(f"spectrum of {channel}")
    ax.set_title(f"step {step}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def render_mesh(path: Path, points: np.ndarray, cells: dict[str, np.ndarray], values: np.ndarray, title: str) -> Path:
    """Off-screen pyvista render of point `values` (N,) on a mesh, viewed along z, to a PNG."""
    import meshio
    import pyvista as pv

    mesh = pv.from_meshio(meshio.Mesh(points, list(cells.items()), point_data={title: values}))
    plotter = pv.Plotter(off_screen=True, window_size=(900, 300))
    plotter.add_mesh(mesh, scalars=title, cmap="viridis")
    plotter.view_xy()
    with atomic_path(path) as tmp:
        plotter.screenshot(str(tmp))
    plotter.close()
    return path
