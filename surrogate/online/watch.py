"""Stream a solver that was not instrumented: follow its output directory as it writes.

Three layouts:

    vtu       a growing series NAME_<k>.vtu (any name ending in an integer), read with meshio;
              point and cell data become fields
    hdf5      one HDF5 file per step, NAME_<k>.h5, every top-level dataset a field
    openfoam  an OpenFOAM case: numeric time directories, read as `convert mesh --format
              openfoam` reads them (point data; a 2D case as a 2D mesh with 2-component
              vectors), so a model trained on a converted case trains on the watched one

A step is streamed once it is complete: a newer step exists, or its files have kept the same
size for `settle_s` seconds (a solver that is still writing changes them), and it reads
without error. Steps go out in order through an `OnlineClient`, numbered 0, 1, ... with the
time from the file (OpenFOAM: the directory name; otherwise the integer in the name times
`dt`). Shapes: every field is sent as the reader gives it, (points,) or (points, components).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from surrogate.errors import InputError
from surrogate.online.client import OnlineClient

if TYPE_CHECKING:
    from surrogate.datasets.openfoam import FoamCase

KINDS = ("vtu", "hdf5", "openfoam")
_INDEX = re.compile(r"(\d+)$")


def _float_fields(named: dict[str, np.ndarray], wanted: list[str] | None) -> dict[str, np.ndarray]:
    out = {k: np.ascontiguousarray(v) for k, v in named.items() if np.asarray(v).dtype.kind == "f"}
    if wanted is not None:
        missing = sorted(set(wanted) - set(out))
        if missing:
            raise InputError(f"fields {missing} not in the solver's output; it has {sorted(out)}")
        out = {k: out[k] for k in wanted}
    return out


class DirectoryWatcher:
    """Follows `directory` and sends each newly completed step through `client`.

    Args:
        kind: "vtu", "hdf5" or "openfoam".
        fields: names to send (all floating-point fields when None).
        dt: time per index step for vtu/hdf5 series (their files carry no time).
        settle_s: how long the files of the newest step must keep their size to count as complete.
    """

    def __init__(
        self,
        directory: str | Path,
        kind: str,
        client: OnlineClient | None,
        fields: list[str] | None = None,
        dt: float = 1.0,
        settle_s: float = 1.0,
    ) -> None:
        if kind not in KINDS:
            raise InputError(f"watch kind {kind!r}: expected one of {KINDS}")
        self.directory, self.kind, self.client = Path(directory), kind, client
        self.fields, self.dt, self.settle_s = fields, dt, settle_s
        if not self.directory.is_dir():
            raise InputError(f"watch: {self.directory} is not a directory")
        self.sent = 0
        self._case: FoamCase | None = None
        self._sizes: dict[str, tuple[int, float]] = {}  # step key -> (total bytes, since when unchanged)

    def _steps(self) -> list[tuple[float, str, list[Path]]]:
        """(sort key, step key, files) of every step present, in order."""
        if self.kind == "openfoam":
            out = []
            for d in self.directory.iterdir():
                try:
                    t = float(d.name)
                except ValueError:
                    continue
                if d.is_dir() and any(f.is_file() for f in d.iterdir()):
                    out.append((t, d.name, sorted(f for f in d.iterdir() if f.is_file())))
            return sorted(out)
        suffix = ".vtu" if self.kind == "vtu" else ".h5"
        out = []
        for f in self.directory.glob(f"*{suffix}"):
            m = _INDEX.search(f.stem)
            if m:
                out.append((float(m.group(1)), f.name, [f]))
        return sorted(out)

    def _settled(self, key: str, files: list[Path]) -> bool:
        size = sum(f.stat().st_size for f in files)
        now = time.monotonic()
        old = self._sizes.get(key)
        if old is None or old[0] != size:
            self._sizes[key] = (size, now)
            return False
        return now - old[1] >= self.settle_s

    def _read(self, key: str, files: list[Path]) -> dict[str, np.ndarray]:
        if self.kind == "vtu":
            import meshio

            mesh = meshio.read(files[0])
            named = dict(mesh.point_data)
            named.update({k: np.concatenate(v) for k, v in mesh.cell_data.items()})
            return _float_fields(named, self.fields)
        if self.kind == "hdf5":
            import h5py

            with h5py.File(files[0], "r") as h:
                return _float_fields({k: h[k][()] for k in h if isinstance(h[k], h5py.Dataset)}, self.fields)
        from surrogate.datasets.openfoam import FoamCase

        if self._case is None:  # the mesh exists once the solver writes its first step
            self._case = FoamCase(self.directory)
        named, _ = self._case.step(float(key))
        return _float_fields(named, self.fields)

    def poll(self, final: bool = False) -> int:
        """Send the steps completed since the last poll (with `final`, the solver has stopped:
        the newest step counts as complete too); returns how many were sent."""
        steps = self._steps()[self.sent :]
        sent = 0
        for i, (order, key, files) in enumerate(steps):
            newest = i == len(steps) - 1 and not final
            if newest and not self._settled(key, files):
                break
            try:
                fields = self._read(key, files)
            except (OSError, ValueError, KeyError, AttributeError, InputError) as e:  # still being written: try again
                # (VTK's OpenFOAM reader, racing a time directory being written, lists no times: AttributeError;
                # the mesh may not be written yet: InputError)
                if newest:
                    break
                raise InputError(f"watch: step {key} in {self.directory} cannot be read although a newer step exists: {e}") from None
            t = order if self.kind == "openfoam" else order * self.dt
            if self.client is None:
                raise InputError("watch: no client to send through")
            self.client.send(self.sent, t, fields)
            self.sent += 1
            sent += 1
        if sent and self.client is not None:
            self.client.flush()  # each completed step goes out now, not when a batch fills
        return sent

    def run(self, stop: Callable[[], bool], poll_s: float = 0.5, heartbeat_s: float = 10.0) -> int:
        """Poll until `stop()` is true, then send what remains complete; returns steps sent."""
        last_beat = time.monotonic()
        while not stop():
            self.poll()
            if self.client is not None and time.monotonic() - last_beat > heartbeat_s:
                self.client.heartbeat()
                last_beat = time.monotonic()
            time.sleep(poll_s)
        self.poll(final=True)
        return self.sent
