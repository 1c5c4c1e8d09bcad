"""Our grid stores and The Well's dataset folders, both ways. `export_well`: a store as a dataset
folder in The Well's layout, so that The Well's own loader sees our train / valid / test split
(`import_well` reads such a folder back into one store, its split from the folders):

    DIR/data/train/<name>.hdf5, DIR/data/valid/<name>.hdf5, DIR/data/test/<name>.hdf5
    DIR/stats.yaml   mean, std, mean_delta, std_delta, rms, rms_delta of every field over the
                     train split (a vector field: one value per component), as The Well's
                     normalizations read them

Each split file is the store's own HDF5 layout (The Well's) holding that split's trajectories:
the same attributes, dimensions and boundary conditions, the parameters and fields of those
trajectories, and `@n_trajectories` their number. An empty split gets an empty folder.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import yaml

from surrogate.datasets.atomic import atomic_dir, atomic_path
from surrogate.datasets.store import SPLITS, GridStore, GridStoreWriter, param_attr
from surrogate.datasets.well_folder import open_files, well_files
from surrogate.errors import InputError

COPIED = ("dimensions", "boundary_conditions")
SUBSET = ("scalars", "t0_fields", "t1_fields", "t2_fields")


def _write_split(src: h5py.File, dst: Path, idx: np.ndarray) -> None:
    with atomic_path(dst) as tmp, h5py.File(tmp, "w") as out:
        out.attrs.update(dict(src.attrs))
        out.attrs["n_trajectories"] = len(idx)
        for name in src.attrs.get("simulation_parameters", []):  # this split's values
            values = np.asarray(src["scalars"][str(name)][()])
            out.attrs[str(name)] = param_attr(values[idx] if values.ndim else values)
        for group in COPIED:
            src.copy(src[group], out, name=group)
        for group in SUBSET:
            if group not in src:
                continue
            g = out.create_group(group)
            g.attrs.update(dict(src[group].attrs))
            for name, ds in src[group].items():
                sample_varying = bool(ds.attrs.get("sample_varying", True))
                data = ds[()][idx] if sample_varying and ds.ndim > 0 else ds[()]
                chunks = (1, *data.shape[1:]) if sample_varying and data.ndim > 1 and len(idx) else None
                new = g.create_dataset(name, data=data, chunks=chunks)
                new.attrs.update(dict(ds.attrs))


def _statistics(store: GridStore) -> dict[str, dict[str, float | list[float]]]:
    """Per field over the train split: moments of the values and of the step increments."""
    train = np.sort(store.splits["train"])
    if len(train) == 0:
        raise InputError(f"{store.path}: the train split is empty; The Well's stats.yaml is computed over it")
    stats: dict[str, dict[str, float | list[float]]] = {k: {} for k in ("mean", "std", "mean_delta", "std_delta", "rms", "rms_delta")}
    fields = [(n, False) for n in store.schema.scalar_fields] + [(n, True) for n in store.schema.vector_fields]
    with h5py.File(store.path, "r") as f:
        for name, vector in fields:
            data = f[f"{'t1' if vector else 't0'}_fields/{name}"][train].astype(np.float64)  # (B, T, *space[, D])
            delta = np.diff(data, axis=1)
            axes = tuple(range(data.ndim - 1)) if vector else None
            for key, values in (("", data), ("_delta", delta)):
                mean, std, rms = values.mean(axis=axes), values.std(axis=axes), np.sqrt((values**2).mean(axis=axes))
                for stat, v in (("mean", mean), ("std", std), ("rms", rms)):
                    stats[stat + key][name] = np.asarray(v).tolist()
    return stats


def export_well(store_path: str | Path, out_dir: str | Path) -> Path:
    """Write `out_dir` (replacing it whole, or not at all) from the grid store at `store_path`."""
    store = GridStore(store_path)
    stats = _statistics(store)
    name = Path(store_path).stem
    with atomic_dir(out_dir) as tmp, h5py.File(store.path, "r") as src:
        for split in SPLITS:
            folder = tmp / "data" / split
            folder.mkdir(parents=True)
            idx = np.sort(store.splits[split])
            if len(idx):
                _write_split(src, folder / f"{name}.hdf5", idx)
        (tmp / "stats.yaml").write_text(yaml.safe_dump(stats, sort_keys=False))
    return Path(out_dir)


def import_well(src: str | Path, dst: str | Path) -> tuple[Path, dict[str, int]]:
    """A Well dataset folder (or one file) as one grid store at `dst`, its split from the folders;
    returns the store and the trajectories per split. Every file must share the first's schema."""
    stores = open_files(well_files(src))
    first = next(s for ss in stores.values() for s in ss)
    counts = {split: sum(s.n_trajectories for s in ss) for split, ss in stores.items()}
    total = sum(counts.values())
    with GridStoreWriter(dst, first.schema, total) as writer:
        start, splits = 0, {}
        for split, ss in stores.items():
            begin = start
            for store in ss:
                with h5py.File(store.path, "r") as f:
                    fields = {n: f[f"t0_fields/{n}"][()] for n in store.schema.scalar_fields}
                    fields |= {n: f[f"t1_fields/{n}"][()] for n in store.schema.vector_fields}
                mask = None if store.mask is None else store.mask[:, 0]
                writer.write(start, fields, store.params, mask)
                start += store.n_trajectories
            splits[split] = np.arange(begin, start)
        writer.set_splits(**splits)
    return Path(dst), counts
