"""Local multi-process training: join the process group torchrun describes, or start N ranks here."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from surrogate.device import resolve_device


def init_distributed_from_env(device: str) -> None:
    """Join the process group that torchrun describes in the environment (if any)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method="env://")


def _rank_worker(rank: int, job: Callable[..., Any], args: tuple[Any, ...], device: str, world_size: int, port: int, queue: Any) -> None:
    # A spawned rank process: its environment is its own, and torch.distributed reads the rendezvous from it.
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    init_distributed_from_env(device)
    try:
        result = job(*args, progress=rank == 0)
        if rank == 0:
            queue.put(result)
    finally:
        dist.destroy_process_group()


def run_local_ranks(job: Callable[..., Any], args: tuple[Any, ...], nproc: int, device: str = "auto") -> Any:
    """`job(*args, progress=...)` on `nproc` local processes joined in one process group (gloo on
    CPU, NCCL on GPUs), rendezvous on a free loopback port; returns rank 0's result."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    queue = torch.multiprocessing.get_context("spawn").SimpleQueue()
    torch.multiprocessing.start_processes(_rank_worker, (job, args, device, nproc, port, queue), nprocs=nproc, start_method="spawn")
    return queue.get()
