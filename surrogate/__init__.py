"""surrogate: neural-operator surrogates of fluid flows."""

from pathlib import Path
from typing import Any


def open_dataset(path: str | Path) -> Any:
    """A store (.h5) or netCDF rollout (.nc) as a lazy, dask-backed `xarray.Dataset` (for notebooks)."""
    from surrogate.export.xarray import open_dataset as _open

    return _open(path)
