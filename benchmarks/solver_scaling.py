"""Throughput of the batched Incompressible2D solver (lid-driven cavity, Re = 100).

Cell-updates per second = B * NX * NY * sub-steps / wall time, against the batch size B and
the grid size, on the CPU (and the GPU when one is available). One SSP-RK2 sub-step does two
advection-diffusion stages and two pressure solves.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import write_result
from surrogate.solvers.incompressible2d import lid_driven_cavity


def measure(n: int, batch: int, device: str, substeps: int) -> float:
    solver = lid_driven_cavity(n, dt=1.0, max_substep=1.0, device=device)
    state = solver.init(torch.ones(batch), torch.full((batch,), 0.01))
    u, v = solver.unpack(state.fields)
    h = solver.substep_size(u + 1.0, v, state.params[:, 1])  # the lid speed bounds the CFL step
    solver.dt = h * substeps
    state = solver.step(state)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    state = solver.step(state)
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    n_sub = math.ceil(solver.dt / solver.substep_size(*solver.unpack(state.fields), state.params[:, 1]) - 1e-9)
    return batch * n * n * max(n_sub, substeps) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--grids", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--substeps", type=int, default=20)
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for n in args.grids:
            for b in args.batches:
                rate = measure(n, b, device, args.substeps)
                rows.append({"device": device, "grid": n, "batch": b, "cell_updates_per_s": rate})
    table = Table(title="Incompressible2D throughput (cell-updates/s), cavity Re = 100")
    for col in ("device", "grid", "batch", "cell-updates/s", "vs batch 1"):
        table.add_column(col, justify="right")
    for r in rows:
        base = next(x for x in rows if x["device"] == r["device"] and x["grid"] == r["grid"] and x["batch"] == args.batches[0])
        table.add_row(
            r["device"],
            f"{r['grid']}^2",
            str(r["batch"]),
            f"{r['cell_updates_per_s']:.3e}",
            f"{r['cell_updates_per_s'] / base['cell_updates_per_s']:.1f}x",
        )
    Console().print(table)
    print(f"wrote {write_result('solver_scaling', {'sizes': vars(args), 'rows': rows})}")


if __name__ == "__main__":
    main()
