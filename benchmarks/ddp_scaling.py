"""Training samples/s against the number of DDP processes (gloo on CPU, NCCL on GPUs).

Each process trains the FNO on its share of a fixed per-process batch of 64^2 fields
(weak scaling: the global batch grows with the processes). Efficiency = samples/s of N
processes / (N x samples/s of one). On this 2-core machine the ceiling is 2 processes.
"""

from __future__ import annotations

import argparse
import os
import socket
import time

import torch
import torch.distributed as dist
from rich.console import Console
from rich.table import Table

from benchmarks.common import write_result
from surrogate.operators.fno import FNO


def worker(rank: int, world: int, port: int, args: argparse.Namespace, queue: object) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(
        FNO(1, 1, 1, n_modes=(16, 16), hidden_channels=args.width).to(device), device_ids=[rank] if cuda else None
    )
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randn(args.batch, 1, 64, 64, device=device)
    p = torch.randn(args.batch, 1, device=device)
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            dist.barrier()
            t0 = time.perf_counter()
        loss = (model(x, p) - x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if cuda:
        torch.cuda.synchronize()
    dist.barrier()
    if rank == 0:
        queue.put(time.perf_counter() - t0)  # type: ignore[attr-defined]
    dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=8, help="per process")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    rows = []
    for n in args.procs:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        queue = torch.multiprocessing.get_context("spawn").SimpleQueue()
        torch.multiprocessing.start_processes(worker, (n, port, args, queue), nprocs=n, start_method="spawn")
        seconds = queue.get()
        rows.append({"processes": n, "samples_per_s": n * args.batch * args.steps / seconds})
    base = rows[0]["samples_per_s"]
    for r in rows:
        r["efficiency"] = r["samples_per_s"] / (base * r["processes"] / rows[0]["processes"])
    table = Table(title=f"DDP weak scaling, FNO 64^2, {args.batch} samples per process")
    for col in ("processes", "samples/s", "efficiency"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["processes"]), f"{r['samples_per_s']:.1f}", f"{r['efficiency']:.2f}")
    Console().print(table)
    print(f"wrote {write_result('ddp_scaling', {'sizes': vars(args), 'rows': rows})}")


if __name__ == "__main__":
    main()
