"""Time per rollout step: the IFactFormer-m surrogate against the channel LES it replaces.

One step is one data interval `--dt` (h / u_tau): the LES (DSM closure) takes as many RK3
sub-steps as its CFL bound needs from a developed turbulent state; the surrogate takes one
forward pass. Same device, same grid, same batch, timed interleaved in one run; the ratio is
the speed-up (the anchor's claim: "much faster"; the target is >= 50x on a GPU).
Timing does not depend on the weights, so the surrogate is a freshly initialised model of
the authors' published configuration (dim 96, 5 heads of 96, 10 iterations).

    python -m benchmarks.channel_rollout --grid 32 48 32 --batch 1 4
"""

from __future__ import annotations

import argparse

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import median, time_interleaved, write_result
from surrogate.operators.factformer import FactFormer
from surrogate.solvers.channel import ChannelGrid, ChannelSolver, perturbed_initial

PRESET = {"name": "factformer", "variant": "m", "preset": "paper (dim 96, dim_head 96, heads 5, depth 1, n_layer 10)"}


def time_channel(
    grid_shape: tuple[int, int, int],
    batch: int,
    device: torch.device,
    repeats: int = 5,
    re_tau: float = 180.0,
    dt: float = 0.05,
    spinup: float = 2.0,
) -> dict[str, object]:
    """Seconds per data step of the DSM LES and of IFactFormer-m on one grid and batch, timed interleaved."""
    nx, ny, nz = grid_shape
    grid = ChannelGrid(nx, ny, nz)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    solver = ChannelSolver(grid, dt=dt, closure="dsm", drive="pressure", device=device)
    state = solver.init(torch.cat([perturbed_initial(grid, 1, re_tau, 0.1, seed=i) for i in range(batch)]), re_tau)
    for _ in range(round(spinup / dt)):
        state = solver.step(state)
    model = FactFormer(4, 4, 1, variant="m").to(device).eval()  # the paper preset, u v w p in and out
    x = state.fields.float()
    params = torch.full((batch, 1), re_tau, device=device)
    holder = {"state": state}

    def les() -> None:
        holder["state"] = solver.step(holder["state"])
        sync()

    @torch.no_grad()
    def surrogate() -> None:
        model(x, params)
        sync()

    times = time_interleaved({"les": les, "surrogate": surrogate}, repeats, warmup=1)
    t_les, t_sur = median(times["les"]), median(times["surrogate"])
    return {
        "grid": [nx, ny, nz],
        "batch": batch,
        "device": str(device),
        "les_s_per_step": t_les,
        "surrogate_s_per_step": t_sur,
        "speedup": t_les / t_sur,
        "closure": "dsm",
        "re_tau": re_tau,
        "dt": dt,
        "model": PRESET,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--grid",
        type=int,
        nargs=3,
        action="append",
        metavar=("NX", "NY", "NZ"),
        help="grids to time (repeatable; default 12 24 12 and 32 48 32)",
    )
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--re-tau", type=float, default=180.0)
    ap.add_argument("--dt", type=float, default=0.05, help="data interval, h / u_tau (that of the channel configs and tests)")
    ap.add_argument("--spinup", type=float, default=2.0, help="h / u_tau run before timing, so the LES times developed flow")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    rows = [
        time_channel(tuple(g), b, device, args.repeats, args.re_tau, args.dt, args.spinup)
        for g in args.grid or [(12, 24, 12), (32, 48, 32)]
        for b in args.batch
    ]
    table = Table(title=f"Channel rollout: s per step of {args.dt:g} h/u_tau on {args.device} (median of {args.repeats})")
    for col in ("grid", "batch", "LES (DSM)", "IFactFormer-m", "speed-up"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            "x".join(map(str, r["grid"])),
            str(r["batch"]),
            f"{r['les_s_per_step']:.4f}",
            f"{r['surrogate_s_per_step']:.4f}",
            f"{r['speedup']:.1f}x",
        )
    Console().print(table)
    write_result(
        f"channel_rollout_{device.type}",
        {
            "re_tau": args.re_tau,
            "dt": args.dt,
            "closure": "dsm",
            "model": PRESET,
            "target_speedup_gpu": 50,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
