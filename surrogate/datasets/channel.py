"""Turbulent channel data: the IFactFormer-m release layout, DNS cutouts in HDF5, LES filtering,
and conversion to the canonical grid store.

Layouts read:
    (a) IFactFormer-m's release (Yang et al., `huiyu-2002/IFactFormer-m`, data on Kaggle as
        `Retau180_dim21x400x32x33x16x4_dT200.npy`): one `.npy` shaped (trajectories, snapshots,
        Nx, Ny, Nz, channels), channels u, v, w, p in that order, on the box 4 pi x 2 x 4 pi / 3
        (x streamwise, y wall-normal, z spanwise). The array carries neither y nor dt:
          y   given (`y=`), or read from `y.npy` / `<stem>_y.npy` beside the array, or else the
              authors' own coordinates (`get_pos_lst`: linspace(0, 2, Ny), wall to wall);
          dt  must be given: their file name's dT200 is not a time in flow units.
    (b) DNS cutouts: an HDF5 file with one dataset per field shaped (T, Nx, Ny, Nz) or
        (B, T, Nx, Ny, Nz), the coordinates `x`, `y`, `z` (1D datasets), and the time step as
        a `dt` attribute or a `t` dataset (uniform), or given.

Splits as the authors' `main.ipynb`: the last trajectory is left out of training (their 21st,
ours the test split, rolled out); of the others, the first 80% train and the rest validate
(their one-step test set: trajectories 16-19 of 0-19).

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
    dt: float
    y_source: str = "file"


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


def authors_y(ny: int, height: float = 2.0) -> np.ndarray:
    """The y coordinates the IFactFormer-m code gives the model (`get_pos_lst`): equispaced, wall to wall."""
    return np.linspace(0.0, height, ny)


def check_dt(dt: float | None, where: str, found: str = "") -> float:
    if dt is None:
        raise InputError(f"{where}: no time step {found or 'in the file'}; give it (--dt): the time between snapshots in flow units")
    if not np.isfinite(dt) or dt <= 0:
        raise InputError(f"{where}: dt = {dt}; expected a positive time between snapshots")
    return float(dt)


def read_factformer_npy(
    path: str | Path,
    y: np.ndarray | None = None,
    channels: Sequence[str] = CHANNELS,
    box: tuple[float, float, float] = BOX,
    dt: float | None = None,
) -> ChannelData:
    """IFactFormer-m's array (memory-mapped, not loaded) with its coordinates; y from `y`, a
    sidecar file, or the authors' equispaced coordinates (`y_source` says which)."""
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
    dt = check_dt(dt, str(path), "(the .npy layout carries none)")
    nx, ny, nz = arr.shape[2:5]
    sidecars = [p for p in (path.with_name(f"{path.stem}_y.npy"), path.with_name("y.npy")) if p.is_file()]
    if y is not None:
        source = "given"
    elif sidecars:
        y, source = np.load(sidecars[0]), str(sidecars[0])
    else:
        y, source = authors_y(ny, box[1]), "the authors' equispaced coordinates (no y file)"
    y = check_y(y, str(path), box[1])
    if len(y) != ny:
        raise InputError(f"{path}: the y grid ({source}) has {len(y)} points, the array Ny = {ny}")
    x = np.arange(nx) * box[0] / nx
    z = np.arange(nz) * box[2] / nz
    return ChannelData(arr, x, y, z, tuple(channels), dt, source)


def read_dns_h5(path: str | Path, fields: Sequence[str] = CHANNELS, dt: float | None = None) -> ChannelData:
    """A DNS cutout: per-field datasets (T or B x T, Nx, Ny, Nz), coordinates x, y, z, and dt
    (attribute `dt` or dataset `t`; `dt` given must agree with the file's)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with h5py.File(path, "r") as h:
        missing = [k for k in (*fields, "x", "y", "z") if k not in h]
        if missing:
            raise InputError(f"{path}: no dataset(s) {missing}; it has {sorted(h)}")
        x, y, z = (np.asarray(h[k][()], dtype=np.float64) for k in ("x", "y", "z"))
        y = check_y(y, str(path))
        stored = file_dt(h, path)
        if dt is not None and stored is not None and not np.isclose(dt, stored, rtol=1e-6):
            raise InputError(f"{path}: dt {dt:.6g} given, the file says {stored:.6g}")
        dt = check_dt(stored if dt is None else dt, str(path), "(no `dt` attribute or `t` dataset)")
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


def file_dt(h: h5py.File, path: Path) -> float | None:
    """The snapshot interval an HDF5 cutout states: attribute `dt`, or the steps of a uniform `t`."""
    if "dt" in h.attrs:
        return float(h.attrs["dt"])
    if "t" not in h:
        return None
    t = np.asarray(h["t"][()], dtype=np.float64).ravel()
    steps = np.diff(t)
    if len(steps) == 0 or not np.allclose(steps, steps[0], rtol=1e-6) or steps[0] <= 0:
        raise InputError(f"{path}: dataset 't' is not a uniform increasing time axis (steps {steps[:5]}...)")
    return float((t[-1] - t[0]) / len(steps))


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
    return ChannelData(
        a.astype(np.float32), np.arange(nx) * lx / nx, y_coarse, np.arange(nz) * lz / nz, data.channels, data.dt, data.y_source
    )


def write_channel_store(data: ChannelData, path: str | Path, name: str = "channel", re_tau: float | None = None) -> Path:
    """The canonical grid store: velocity (u, v, w) as a vector field, the rest as scalars;
    x and z periodic, y walls; `re_tau` becomes a parameter when given. Splits as the
    authors': the last trajectory tests; of the rest, the first 80% train, the others validate."""
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
        n_test = min(1, b - 1)
        n_train = max(1, int(0.8 * (b - n_test)))
        n_valid = b - n_test - n_train
        w.set_splits(train=range(b - n_test - n_valid), valid=range(b - n_test - n_valid, b - n_test), test=range(b - n_test, b))
    return Path(path)
