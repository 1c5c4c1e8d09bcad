"""A Well dataset folder opened as one grid store, without copying its data.

The Well ships a dataset as `NAME/data/{train,valid,test}/*.hdf5` (its split is the folder a
file lies in) with `NAME/stats.yaml` (mean, std, ... of every field over the train split).
`link_folder` writes a small HDF5 file in the user's cache (`$XDG_CACHE_HOME/surrogate/well`,
else `~/.cache/surrogate/well`) whose fields are virtual datasets (HDF5 >= 1.10) stacking the
files' trajectories in split order, whose `splits/` group records which came from which folder,
and whose `@well_stats` carries `stats.yaml`'s mean and std for normalization. The link is keyed
by the files' paths, sizes and modification times, so a changed folder gets a new one.

Every file must share the first's fields, parameters, grid and times.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import yaml

from surrogate.datasets.atomic import atomic_path
from surrogate.datasets.store import SPLITS, GridStore
from surrogate.errors import InputError

LINKED = ("t0_fields", "t1_fields")


def well_files(src: str | Path) -> dict[str, list[Path]]:
    """The HDF5 files of a Well dataset folder by split (`SRC/data/<split>/*.hdf5|*.h5`); a
    single file counts as training data."""
    src = Path(src)
    if src.is_file():
        return {"train": [src], "valid": [], "test": []}
    root = src / "data" if (src / "data").is_dir() else src
    found = {s: sorted([*(root / s).glob("*.hdf5"), *(root / s).glob("*.h5")]) for s in SPLITS}
    if not any(found.values()):
        raise InputError(f"{src}: no The Well dataset here (expected {root}/{{train,valid,test}}/*.hdf5)")
    return found


def open_files(files: dict[str, list[Path]]) -> dict[str, list[GridStore]]:
    """Each file as a validated store; all must share the first's schema and times."""
    stores = {split: [GridStore(p) for p in paths] for split, paths in files.items()}
    every = [s for ss in stores.values() for s in ss]
    first = every[0]

    def key(store: GridStore) -> tuple[object, ...]:
        s = store.schema
        return s.scalar_fields, s.vector_fields, s.param_names, s.space_shape, s.has_mask

    for other in every[1:]:
        if key(other) != key(first) or not np.array_equal(other.schema.time, first.schema.time):
            raise InputError(f"{other.path}: its fields, parameters, grid or times differ from {first.path}'s; one store holds one schema")
    return stores


def well_stats(folder: Path) -> dict[str, dict[str, Any]] | None:
    """`stats.yaml`'s mean and std per field, or None without one."""
    path = folder / "stats.yaml"
    if not path.is_file():
        return None
    try:
        stats = yaml.safe_load(path.read_text())
        return {"mean": dict(stats["mean"]), "std": dict(stats["std"])}
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: not The Well's stats.yaml (expected mean: and std: per field; {type(e).__name__}: {e})") from None


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "surrogate" / "well"


def _key(folder: Path, files: dict[str, list[Path]]) -> str:
    h = hashlib.sha1(str(folder.resolve()).encode())
    for split in SPLITS:
        for p in files[split]:
            st = p.stat()
            h.update(f"{split}:{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    stats = folder / "stats.yaml"
    if stats.is_file():
        h.update(stats.read_bytes())
    return h.hexdigest()[:16]


def _stack(out: h5py.Group, name: str, sources: list[h5py.Dataset], counts: list[int]) -> None:
    """A virtual dataset `name` stacking the trajectories of `sources` (each (b_i, ...))."""
    shape = (sum(counts), *sources[0].shape[1:])
    layout = h5py.VirtualLayout(shape=shape, dtype=sources[0].dtype)
    start = 0
    for ds, n in zip(sources, counts):
        layout[start : start + n] = h5py.VirtualSource(str(Path(ds.file.filename).resolve()), ds.name, shape=ds.shape, dtype=ds.dtype)
        start += n
    out.create_virtual_dataset(name, layout, fillvalue=np.nan)


def link_folder(folder: str | Path) -> Path:
    """The linked store of a Well dataset folder (written on first use, reused after)."""
    folder = Path(folder)
    files = well_files(folder)
    path = cache_dir() / f"{folder.resolve().name}-{_key(folder, files)}.h5"
    if path.is_file():
        return path
    stores = open_files(files)
    ordered = [s for split in SPLITS for s in stores[split]]
    counts = [s.n_trajectories for s in ordered]
    stats = well_stats(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    handles = [h5py.File(s.path, "r") for s in ordered]
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as out:
            first = handles[0]
            out.attrs.update(dict(first.attrs))
            out.attrs.update(n_trajectories=sum(counts), linked_from=str(folder.resolve()))
            if stats is not None:
                out.attrs["well_stats"] = json.dumps(stats)
            for group in ("dimensions", "boundary_conditions"):
                first.copy(first[group], out, name=group)
            scalars = out.create_group("scalars")
            scalars.attrs.update(dict(first["scalars"].attrs))
            for i, name in enumerate(first["scalars"].attrs["field_names"]):
                values = np.concatenate([s.params[:, i] for s in ordered])  # constants () broadcast per file
                scalars.create_dataset(str(name), data=values)
                scalars[str(name)].attrs.update(dict(first["scalars"][str(name)].attrs))
                scalars[str(name)].attrs["sample_varying"] = True  # one value per trajectory now
            for group in (*LINKED, "t2_fields"):
                g = out.create_group(group)
                g.attrs.update(dict(first[group].attrs) if group in first else {"field_names": []})
                for name in g.attrs["field_names"]:
                    _stack(g, str(name), [h[group][str(name)] for h in handles], counts)
                    g[str(name)].attrs.update(dict(first[group][str(name)].attrs))
            start, splits = 0, out.create_group("splits")
            for split in SPLITS:
                n = sum(s.n_trajectories for s in stores[split])
                splits.create_dataset(split, data=np.arange(start, start + n, dtype=np.int64))
                start += n
    finally:
        for h in handles:
            h.close()
    return path


def open_grid_store(path: str | Path) -> GridStore:
    """`data.path` as users give it: a grid store file, or a Well dataset folder (linked)."""
    path = Path(path)
    return GridStore(link_folder(path) if path.is_dir() else path)
