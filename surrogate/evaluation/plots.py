"""Figures of a report: error against physical time, field snapshots on grids and meshes,
spectra over trajectories, steady fields with their surface quantity.

Every figure is drawn on its own `matplotlib.figure.Figure` (no pyplot): a caller's plotting
state, a notebook's backend included, stays as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from surrogate.datasets.atomic import atomic_path

METRIC_LABELS = {"rel_l2": "relative L2 error", "rmse": "RMSE", "nmse": "normalized MSE"}


def _figure(**kw: Any) -> Any:
    from matplotlib.figure import Figure  # no pyplot: the caller's plotting state stays as it was

    return Figure(**kw)


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


def error_vs_time(
    path: Path,
    results: Mapping[str, Mapping[str, np.ndarray]],
    times: np.ndarray,
    time_label: str,
    title: str,
    n_trajectories: int,
    what: str = "trajectories",
) -> Path:
    """Each stepper's error against physical time: the median over trajectories with the band
    between the first and third quartiles, relative L2 and RMSE side by side.

    `results` is {stepper: {metric_q25 | metric_median | metric_q75: (T,)}}; `times` (T,).
    """
    fig = _figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("rel_l2", "rmse")):
        for name, d in results.items():
            if f"{metric}_median" not in d:
                continue
            (line,) = ax.plot(times, d[f"{metric}_median"], marker="o", ms=3, label=f"{name} (median)")
            ax.fill_between(times, d[f"{metric}_q25"], d[f"{metric}_q75"], color=line.get_color(), alpha=0.2, lw=0)
        ax.set_xlabel(time_label)
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title=f"band: inter-quartile range over {n_trajectories} {what}", title_fontsize=8, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def snapshots(
    path: Path,
    pred: np.ndarray,
    truth: np.ndarray,
    channel: str,
    steps: Sequence[int],
    times: Sequence[float],
    coords: Mapping[str, np.ndarray],
    label: str,
    c: int = 0,
) -> Path:
    """Rows of truth | prediction | error of channel index c at `steps` (1-based, times[s - 1]):
    2D fields with x horizontal on their coordinates at equal aspect, 1D as lines over x, 3D as
    the plane through the middle of the last axis. `label` names the trajectory.

    Shapes: pred, truth (T, C, *space); coords {axis name: (n,)} in space order.
    """
    names = list(coords)
    if pred.ndim == 5:  # (T, C, X, Y, Z): the mid plane of the last axis
        mid = pred.shape[-1] // 2
        label += f", plane {names[2]} = {float(coords[names[2]][mid]):.3g}"
        pred, truth = pred[..., mid], truth[..., mid]
    steps = [s for s in steps if 1 <= s <= pred.shape[0]]
    fig = _figure(figsize=(12, 3.4 * len(steps)))
    axes = fig.subplots(len(steps), 3, squeeze=False)
    lim = float(np.abs(truth[:, c]).max()) or 1.0
    x = np.asarray(coords[names[0]])
    for row, s in zip(axes, steps):
        p, t = pred[s - 1, c], truth[s - 1, c]
        err_lim = float(np.abs(p - t).max()) or 1.0
        for ax, field, title in zip(row, (t, p, p - t), ("truth", "prediction", "prediction - truth")):
            if field.ndim == 1:
                ax.plot(x, field)
                ax.set_xlabel(names[0])
                ax.set_ylabel(channel)
            else:
                y = np.asarray(coords[names[1]])
                vmax = lim if title != "prediction - truth" else err_lim
                im = ax.pcolormesh(x, y, field.T, cmap="RdBu_r", vmin=-vmax, vmax=vmax, shading="nearest")
                ax.set_aspect("equal")
                ax.set_xlabel(names[0])
                ax.set_ylabel(names[1])
                fig.colorbar(im, ax=ax, shrink=0.8)
            ax.set_title(f"{channel} {title}, t = {times[s - 1]:.4g}", fontsize=10)
    fig.suptitle(label)
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


def spectra(path: Path, pred: np.ndarray, truth: np.ndarray, channel: str, time: float, c: int = 0) -> Path:
    """Spectra of truth, prediction and their difference at one time, averaged over the B
    trajectories and divided by the truth's total: each curve is a fraction of the true signal,
    so an error at the level of the noise floor reads as such.

    Shapes: pred, truth (B, C, *space) at that time.
    """
    curves = {}
    for name, fields in (("truth", truth), ("prediction", pred), ("prediction - truth", pred - truth)):
        k, e = energy_spectrum(fields[0, c])
        curves[name] = (k, np.mean([energy_spectrum(f[c])[1] for f in fields], axis=0))
    total = float(curves["truth"][1].sum()) or 1.0
    fig = _figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for name, (k, e) in curves.items():
        ax.loglog(k, e / total, label=name, ls="--" if name.startswith("prediction -") else "-")
    ax.set_xlabel("wavenumber k (shells of the grid's Fourier modes)")
    ax.set_ylabel(f"spectrum of {channel} / total of the truth")
    ax.set_title(f"t = {time:.4g}, mean over {len(truth)} trajectories", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def triangles(cells: Mapping[str, np.ndarray]) -> np.ndarray:
    """The mesh's 2D cells as triangles (quads split along a diagonal), (M, 3)."""
    tris = [np.asarray(cells[k]) for k in ("triangle",) if k in cells]
    if "quad" in cells:
        q = np.asarray(cells["quad"])
        tris += [q[:, [0, 1, 2]], q[:, [0, 2, 3]]]
    return np.concatenate(tris) if tris else np.zeros((0, 3), dtype=np.int64)


def _tri_row(fig: Any, row: Sequence[Any], tri: Any, truth: np.ndarray, pred: np.ndarray, limits: tuple[float, float], title: str) -> None:
    """Truth | prediction | their difference on a triangulation, in one row of axes; `title`
    has a {} for the panel's name. Shapes: truth, pred (N,)."""
    err = float(np.abs(pred - truth).max()) or 1.0
    for ax, values, name in zip(row, (truth, pred, pred - truth), ("truth", "prediction", "prediction - truth")):
        kw = {"vmin": -err, "vmax": err, "cmap": "RdBu_r"} if name.startswith("prediction -") else dict(zip(("vmin", "vmax"), limits))
        im = ax.tripcolor(tri, values, shading="gouraud", **kw)
        ax.set_aspect("equal")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(title.format(name), fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)


def mesh_snapshots(
    path: Path,
    points: np.ndarray,
    tris: np.ndarray,
    pred: np.ndarray,
    truth: np.ndarray,
    channel: str,
    steps: Sequence[int],
    times: Sequence[float],
    label: str,
    c: int = 0,
) -> Path:
    """Rows of truth | prediction | error of channel c drawn on the triangulated mesh at `steps`
    (indices into the rollout, 0 = its start). Shapes: points (N, 2+), tris (M, 3), pred,
    truth (T, C, N)."""
    from matplotlib.tri import Triangulation

    tri = Triangulation(points[:, 0], points[:, 1], tris)
    span = points[:, :2].max(0) - points[:, :2].min(0)
    if span[0] > 2 * span[1]:  # a long channel: the three panels of a step stacked, each full width
        fig = _figure(figsize=(11, 3 * len(steps) * max(1.2, 9 * span[1] / span[0])))
        axes = fig.subplots(3 * len(steps), 1, squeeze=False).reshape(len(steps), 3)
    else:
        fig = _figure(figsize=(13, 3.0 * len(steps)))
        axes = fig.subplots(len(steps), 3, squeeze=False)
    limits = (float(truth[:, c].min()), float(truth[:, c].max()))
    for row, s in zip(axes, steps):
        _tri_row(fig, row, tri, truth[s, c], pred[s, c], limits, f"{channel} {{}}, t = {times[s]:.4g}")
    fig.suptitle(label)
    fig.tight_layout()
    return _save(fig, path)


def steady_fields(
    path: Path,
    points: np.ndarray,
    rings: Sequence[np.ndarray],
    pred: np.ndarray,
    truth: np.ndarray,
    names: Sequence[str],
    surface: np.ndarray,
    label: str,
) -> Path:
    """Truth | prediction | error of every field on a steady sample's point cloud (Delaunay
    triangles, those inside the obstacles dropped), and, when the sample has a pressure `p`
    and surface points, the surface pressure predicted and true along x.

    Shapes: points (N, 2), pred, truth (N, C), surface (N,) bool; rings [(M, 2)].
    """
    from matplotlib.path import Path as Polygon
    from matplotlib.tri import Triangulation

    tri = Triangulation(points[:, 0], points[:, 1])
    centroids = points[tri.triangles, :2].mean(1)
    inside = np.zeros(len(centroids), dtype=bool)
    for ring in rings:
        inside |= Polygon(np.asarray(ring)[:, :2]).contains_points(centroids)
    tri.set_mask(inside)
    has_surface = "p" in names and bool(surface.any())
    rows = len(names) + int(has_surface)
    fig = _figure(figsize=(13, 3.0 * rows))
    axes = fig.subplots(rows, 3, squeeze=False)
    for c, name in enumerate(names):
        limits = (float(truth[:, c].min()), float(truth[:, c].max()))
        _tri_row(fig, axes[c], tri, truth[:, c], pred[:, c], limits, f"{name} {{}}")
    if has_surface:
        row = axes[-1]
        c, on = list(names).index("p"), np.flatnonzero(surface)
        order = on[np.argsort(points[on, 0])]
        row[0].plot(points[order, 0], truth[order, c], ".", ms=4, label="truth")
        row[0].plot(points[order, 0], pred[order, c], ".", ms=4, label="prediction")
        row[0].set_xlabel("x on the obstacle surface")
        row[0].set_ylabel("surface pressure p")
        row[0].legend()
        row[0].grid(True, alpha=0.3)
        row[1].plot(truth[on, c], pred[on, c], ".", ms=4)
        span = [float(truth[on, c].min()), float(truth[on, c].max())]
        row[1].plot(span, span, "k--", lw=1)
        row[1].set_xlabel("true surface p")
        row[1].set_ylabel("predicted surface p")
        row[1].grid(True, alpha=0.3)
        row[2].axis("off")
    fig.suptitle(label)
    fig.tight_layout()
    return _save(fig, path)
