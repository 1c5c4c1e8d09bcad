"""Turbulent channel data: the IFactFormer-m release layout, DNS cutouts in HDF5, LES filtering,
and conversion to the canonical grid store.

Layouts read:
    (a) IFactFormer-m's release: one `.npy` shaped (trajectories, snapshots, Nx, Ny, Nz,
        channels), channels u, v, w, p, on the box 4 pi x 2 x 4 pi / 3 (x streamwise, y
        wall-normal, z spanwise); y is not stored in the array: give it, or the Chebyshev-
        Gauss-Lobatto points y_j = 1 - cos(pi j / (Ny - 1)) are assumed.
    (b) DNS cutouts: an HDF5 file with one dataset per field shaped (T, Nx, Ny, Nz) or
        (B, T, Nx, Ny, Nz) and the coordinates `x`, `y`, `z` (1D datasets).

Filtering to an LES grid: in x and z (periodic) a box filter over the coarsening factor
(block means) or a sharp spectral filter (Fourier modes beyond the coarse Nyquist dropped,
then sampled); in y, linear interpolation onto the coarse, stretched y points.

Shapes: ChannelData.fields (B, T, Nx, Ny, Nz, C); x (Nx,), y (Ny,), z (Nz,).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from surrogate.datasets.store import GridSchema, GridStoreWriter
from surrogate.errors import InputError

CHANNELS = ("u", "v", "w", "p")
BOX = (4 * np.pi, 2.0, 4 * np.pi / 3)
FILTERS = ("box", "spectral")


@dataclass
class ChannelData:
    fields: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    channels: tuple[str, ...]
    dt: float = 1.0


def chebyshev_y(ny: int, height: float = 2.0) -> np.ndarray:
    """Chebyshev-Gauss-Lobatto points from wall to wall, (Ny,)."""
    return height / 2 * (1 - np.cos(np.pi * np.arange(ny) / (ny - 1)))


def check_y(y: np.ndarray, where: str, height: float | None = None) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or len(y) < 3:
        raise InputError(f"{where}: y must be a 1D grid of at least 3 points, got shape {y.shape}")
    step = np.diff(y)
    if (step <= 0).any():
        i = int(np.argmax(step <= 0))
        raise InputError(f"{where}: the y grid is not monotone increasing: y[{i}] = {y[i]:.6g}, y[{i + 1}] = {y[i + 1]:.6g}")
    if height is not None and (y[0] < -1e-9 or y[-1] > height + 1e-9):
        raise InputError(f"{where}: y spans [{y[0]:.6g}, {y[-1]:.6g}], outside the walls [0, {height}]")
    return y


def read_factformer_npy(
    path: str | Path,
    y: np.ndarray | None = None,
    channels: Sequence[str] = CHANNELS,
    box: tuple[float, float, float] = BOX,
    dt: float = 1.0,
) -> ChannelData:
    """IFactFormer-m's array (memory-mapped, not loaded) with its coordinates."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        arr = np.load(path, mmap_mode="r")
    except ValueError as e:
        raise InputError(f"{path}: not a readable .npy array ({e})") from None
    if arr.ndim != 6 or arr.shape[-1] != len(channels):
        raise InputError(
            f"{path}: shape {arr.shape}; the IFactFormer-m layout is (trajectories, snapshots, Nx, Ny, Nz, "
            f"{len(channels)}) with channels {tuple(channels)} (e.g. 21 x 400 x 32 x 33 x 16 x 4)"
        )
    nx, ny, nz = arr.shape[2:5]
    y = chebyshev_y(ny, box[1]) if y is None else check_y(y, str(path), box[1])
    if len(y) != ny:
        raise InputError(f"{path}: the y grid has {len(y)} points, the array Ny = {ny}")
    x = np.arange(nx) * box[0] / nx
    z = np.arange(nz) * box[2] / nz
    return ChannelData(arr, x, y, z, tuple(channels), dt)


def read_dns_h5(path: str | Path, fields: Sequence[str] = CHANNELS, dt: float = 1.0) -> ChannelData:
    """A DNS cutout: per-field datasets (T or B x T, Nx, Ny, Nz) and coordinates x, y, z."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with h5py.File(path, "r") as h:
        missing = [k for k in (*fields, "x", "y", "z") if k not in h]
        if missing:
            raise InputError(f"{path}: no dataset(s) {missing}; it has {sorted(h)}")
        x, y, z = (np.asarray(h[k][()], dtype=np.float64) for k in ("x", "y", "z"))
        y = check_y(y, str(path))
        arrays = []
        for f in fields:
            a = h[f][()]
            a = a[None] if a.ndim == 4 else a
            if a.ndim != 5 or a.shape[2:] != (len(x), len(y), len(z)):
                raise InputError(
                    f"{path}: dataset {f!r} of shape {h[f].shape}; expected (T, {len(x)}, {len(y)}, {len(z)}) "
                    "or (B, T, Nx, Ny, Nz) matching x, y, z"
                )
            arrays.append(a)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise InputError(f"{path}: fields {list(fields)} differ in shape: {sorted(shapes)}")
    return ChannelData(np.stack(arrays, axis=-1), x, y, z, tuple(fields), dt)


def _filter_periodic(a: np.ndarray, axis: int, n_out: int, method: str) -> np.ndarray:
    n = a.shape[axis]
    if n % n_out:
        raise InputError(f"LES filter: {n} points along axis {axis} do not coarsen to {n_out} (need a divisor of {n})")
    f = n // n_out
    if method == "box":
        shape = a.shape[:axis] + (n_out, f) + a.shape[axis + 1 :]
        return a.reshape(shape).mean(axis=axis + 1)
    spec = np.fft.rfft(a, axis=axis)
    keep = [slice(None)] * a.ndim
    keep[axis] = slice(0, n_out // 2 + (n_out % 2))  # drop the coarse Nyquist mode and everything above it
    return np.fft.irfft(spec[tuple(keep)], n=n_out, axis=axis) * (n_out / n)


def filter_to_les(data: ChannelData, nx: int, nz: int, y_coarse: np.ndarray, method: str = "box") -> ChannelData:
    """The fields filtered to an nx x len(y_coarse) x nz LES grid."""
    if method not in FILTERS:
        raise InputError(f"LES filter {method!r}: expected one of {FILTERS}")
    y_coarse = check_y(y_coarse, "coarse y grid")
    if y_coarse[0] < data.y[0] - 1e-12 or y_coarse[-1] > data.y[-1] + 1e-12:
        raise InputError(
            f"coarse y grid [{y_coarse[0]:.6g}, {y_coarse[-1]:.6g}] reaches outside the fine one [{data.y[0]:.6g}, {data.y[-1]:.6g}]"
        )
    a = np.asarray(data.fields, dtype=np.float64)
    a = _filter_periodic(_filter_periodic(a, 2, nx, method), 4, nz, method)
    j = np.clip(np.searchsorted(data.y, y_coarse), 1, len(data.y) - 1)
    w = ((y_coarse - data.y[j - 1]) / (data.y[j] - data.y[j - 1]))[None, None, None, :, None, None]
    a = a[:, :, :, j - 1] * (1 - w) + a[:, :, :, j] * w
    lx, lz = data.x[1] * len(data.x), data.z[1] * len(data.z)
    return ChannelData(a.astype(np.float32), np.arange(nx) * lx / nx, y_coarse, np.arange(nz) * lz / nz, data.channels, data.dt)


def write_channel_store(data: ChannelData, path: str | Path, name: str = "channel", re_tau: float | None = None) -> Path:
    """The canonical grid store: velocity (u, v, w) as a vector field, the rest as scalars;
    x and z periodic, y walls; `re_tau` becomes a parameter when given. Splits: the last
    trajectory is the test split and the one before it the validation split (when there
    are enough)."""
    if data.channels[:3] != ("u", "v", "w"):
        raise InputError(f"channel store: the first channels must be u, v, w; got {data.channels}")
    b, t = data.fields.shape[:2]
    schema = GridSchema(
        name,
        np.arange(t) * data.dt,
        {"x": data.x, "y": data.y, "z": data.z},
        scalar_fields=tuple(data.channels[3:]),
        vector_fields=("velocity",),
        param_names=("re_tau",) if re_tau else (),
        param_offset=(0.0,) if re_tau else (),
        param_scale=(1.0,) if re_tau else (),
        boundary={"x": "periodic", "y": "wall", "z": "periodic"},
    )
    with GridStoreWriter(path, schema, b) as w:
        for i in range(b):  # one trajectory at a time: the source may be a memory map larger than memory
            a = np.asarray(data.fields[i : i + 1], dtype=np.float32)
            fields = {"velocity": a[..., :3], **{c: a[..., 3 + k] for k, c in enumerate(data.channels[3:])}}
            w.write(i, fields, np.array([[re_tau]]) if re_tau else None)
        n_test, n_valid = min(1, b - 1), min(1, max(b - 2, 0))  # the last trajectory tests, the one before validates
        w.set_splits(train=range(b - n_test - n_valid), valid=range(b - n_test - n_valid, b - n_test), test=range(b - n_test, b))
    return Path(path)
