"""Slices of HDF5 datasets as datasets of their own, for XDMF sidecars.

ParaView's default XDMF reader (Xdmf3ReaderS) skips attributes read through HyperSlab data
items ("Skipping unrecognized array type [None]"). A virtual dataset (HDF5 >= 1.10) maps
one slice of a stored array without copying it, so the sidecar can name plain datasets
that every XDMF reader opens. A 2-component vector is padded to 3 with the fill value 0,
as XDMF's `Vector` attribute has 3 components.
"""

from __future__ import annotations

import h5py


def slice_view(h: h5py.File, name: str, source: h5py.Dataset, index: tuple[int | slice, ...], width: int | None = None) -> None:
    """Create virtual dataset `name` in `h` holding `source[index]`, without copying.

    Args:
        source: a dataset of the same file, shape (*lead, N[, D]).
        index: the leading indices to fix, e.g. (trajectory, step) -> (N[, D]),
            or (slice(None), channel) on an (N, C) array -> (N,).
        width: pad the last axis (D) to this width with zeros.
    """
    src = h5py.VirtualSource(".", source.name, shape=source.shape, dtype=source.dtype)
    part = src[index]
    shape = tuple(part.shape)
    if width is not None:
        shape = (*shape[:-1], width)
    layout = h5py.VirtualLayout(shape=shape, dtype=source.dtype)
    if width is None:
        layout[...] = part
    else:
        layout[..., : part.shape[-1]] = part
    h.create_virtual_dataset(name, layout, fillvalue=0)
