"""Write-to-temporary-then-rename, so that no reader ever sees a half-written file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale(folder: Path, prefix: str, suffix: str) -> None:
    """Remove `prefix<pid>suffix` temporaries in `folder` left by processes that died (a killed
    `generate`), so that they do not pile up; a live writer's temporary is left alone."""
    import shutil

    for old in folder.glob(f"{prefix}*{suffix}"):
        pid = old.name[len(prefix) : len(old.name) - len(suffix)]
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds.

    The temporary keeps `path`'s suffix, so writers that pick the format from the file name
    (pyvista, VTK) work on it directly. On any exception the temporary file is removed and an
    existing `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, f".{path.stem}.tmp-", path.suffix)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder of `path`; it replaces `path` (and whatever `path`
    held) only if the block succeeds, else it is removed and `path` is untouched."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, f".{path.name}.tmp-", "")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
