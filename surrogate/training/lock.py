"""One run per output folder: a lock file naming the process that holds it.

Two runs writing the same `out_dir` would overwrite each other's checkpoints and report; the
second is refused while the first's process is alive. A lock left by a killed run (its
process gone) is taken over.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from surrogate.datasets.atomic import process_alive
from surrogate.errors import InputError

LOCK_NAME = ".surrogate.lock"


@contextlib.contextmanager
def run_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold `out_dir`'s lock for the block; refuse when a live process holds it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock = out / LOCK_NAME
    for _ in range(2):  # a second try after removing a dead run's lock
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                holder = int(lock.read_text().strip() or "0")
            except (OSError, ValueError):
                holder = 0
            if holder and holder != os.getpid() and process_alive(holder):
                raise InputError(
                    f"{out}: another run (process {holder}) is writing to this out_dir; wait for it, "
                    "or give this run another out_dir (--set out_dir=...)"
                ) from None
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)
