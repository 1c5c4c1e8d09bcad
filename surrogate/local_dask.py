"""A Dask LocalCluster of worker processes that leaves this process's environment as it was.

distributed's nanny writes its pre-spawn settings (MALLOC_TRIM_THRESHOLD_=65536, one BLAS
thread) into `os.environ` of the process that starts the cluster, and every process started
from it later inherits them: a torch job under that malloc setting spends much of its time
in the kernel (a 50 s training run took 140 s). The environment is restored once the workers
are up; the nanny applies the settings again to any worker it starts later.
"""

from __future__ import annotations

import os
from typing import Any


def local_cluster(n_workers: int) -> Any:
    """`LocalCluster(n_workers, one thread each, processes)` with `os.environ` unchanged."""
    from dask.distributed import LocalCluster

    saved = dict(os.environ)
    try:
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
