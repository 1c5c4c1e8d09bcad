"""A Dask LocalCluster of worker processes that leaves this process's environment as it was.

distributed's nanny writes its "pre-spawn" settings (MALLOC_TRIM_THRESHOLD_=65536, one BLAS
thread) into `os.environ` of the process that starts the cluster, at every worker start and
restart, and every process started from it later inherits them: a torch job under that
malloc setting spends much of its time in the kernel (a 50 s training run took 140 s). Here
the nannies get no pre-spawn settings; the thread limits go to the workers' own environment
instead, and `os.environ` is restored after the start (a restart still leaves distributed's
bookkeeping variables there, such as PYTHONHASHSEED, but none that changes how programs run).

The cluster speaks TLS with temporary credentials (`Security.temporary()`: a certificate
authority and keys made for this cluster, held in this process's memory only) and listens on
127.0.0.1: a Dask scheduler runs whatever code its clients submit, so no other local user
may reach it. `Client(cluster)` takes the credentials from the cluster.
"""

from __future__ import annotations

import os
from typing import Any

WORKER_ENV = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}


def local_cluster(n_workers: int) -> Any:
    """`LocalCluster(n_workers, one thread each, processes, TLS)` that leaves `os.environ` alone."""
    import dask
    from dask.distributed import LocalCluster
    from distributed.security import Security

    saved = dict(os.environ)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": {}, "distributed.nanny.environ": WORKER_ENV}):
            return LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                host="127.0.0.1",
                protocol="tls://",
                security=Security.temporary(),
            )
    finally:
        os.environ.clear()
        os.environ.update(saved)
