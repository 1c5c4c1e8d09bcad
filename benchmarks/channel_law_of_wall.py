"""Validation run of the channel LES at Re_tau = 180: mean profile against the law of the wall.

From Reichardt's mean profile with random disturbances (or from the last snapshot of
`--initial`, a store on the same grid, e.g. developed turbulence of the no-model run), the
solver (pressure drive, so the equilibrium Re_tau is 180 exactly) spins up for `--spinup` h/u_tau, then samples every
`--every` over `--average`. Reported: U+(y+) against U+ = y+ (y+ < 5) and the log law
U+ = ln(y+)/0.41 + 5.2 (30 < y+ < 150), the measured Re_tau, rms profiles, and the wall time.
Too slow for the test suite (minutes on 2 CPU cores); its JSON is committed instead.

    python -m benchmarks.channel_law_of_wall --closure dsm
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table

from benchmarks.common import RESULTS, write_result
from surrogate.datasets.store import GridStore
from surrogate.evaluation.turbulence import channel_statistics, law_of_the_wall_errors, plot_statistics
from surrogate.solvers.channel import ChannelGrid, ChannelSolver, perturbed_initial


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--closure", default="dsm", choices=("dsm", "wale", "none"))
    ap.add_argument("--grid", type=int, nargs=3, default=(32, 48, 32), metavar=("NX", "NY", "NZ"))
    ap.add_argument("--box", type=float, nargs=2, default=(2.0, 1.0), metavar=("LX", "LZ"), help="box length and width in units of pi h")
    ap.add_argument("--re-tau", type=float, default=180.0)
    ap.add_argument("--spinup", type=float, default=20.0, help="h / u_tau simulated before sampling")
    ap.add_argument("--average", type=float, default=20.0, help="h / u_tau over which statistics are sampled")
    ap.add_argument("--every", type=float, default=0.5, help="sampling interval")
    ap.add_argument("--initial", type=Path, help="start from the last snapshot of this store's first trajectory (same grid)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    grid = ChannelGrid(*args.grid, lx=args.box[0] * np.pi, lz=args.box[1] * np.pi)
    name = f"channel_law_of_wall_{args.closure}_{'x'.join(map(str, args.grid))}_{args.box[0]:g}pi_x_{args.box[1]:g}pi"
    name += "_from_developed" if args.initial else ""
    solver = ChannelSolver(grid, dt=args.every, closure=args.closure, drive="pressure", device=args.device)
    if args.initial:
        store = GridStore(args.initial)
        names = list(store.channel_names)
        last = store.read(0, store.n_steps - 1, store.n_steps)[0][[names.index(f"velocity_{a}") for a in "xyz"]]
        initial = torch.from_numpy(last)[None]
    else:
        initial = perturbed_initial(grid, 1, args.re_tau, amplitude=0.1)
    state = solver.init(initial, args.re_tau)
    t0 = time.perf_counter()
    for _ in track(range(round(args.spinup / args.every)), description="spin-up"):
        state = solver.step(state)
    snaps = []
    for _ in track(range(round(args.average / args.every)), description="sampling"):
        state = solver.step(state)
        snaps.append(state.fields[0].cpu())
    wall = time.perf_counter() - t0
    stats = channel_statistics(torch.stack(snaps), solver.yc.cpu(), nu=1 / args.re_tau)
    errors = law_of_the_wall_errors(stats)
    plot = RESULTS / f"{name}.png"
    plot_statistics({f"LES {args.closure}": stats}, plot)
    steps = round((args.spinup + args.average) / args.every)
    table = Table(title=f"Channel LES ({args.closure}) at Re_tau = {args.re_tau:g}, grid {tuple(args.grid)}")
    for col in ("y+", "U+", "law", "rel. error"):
        table.add_column(col, justify="right")
    for yp, up in zip(stats.y_plus, stats.u_plus):
        law = yp if yp < 5 else np.log(yp) / 0.41 + 5.2 if 30 < yp < 150 else np.nan
        table.add_row(f"{yp:.1f}", f"{up:.2f}", f"{law:.2f}", f"{up / law - 1:+.3f}" if np.isfinite(law) else "")
    console = Console()
    console.print(table)
    console.print(
        f"measured Re_tau {stats.re_tau:.1f}; max |rel. error|: sublayer {errors['viscous_sublayer']:.3f}, "
        f"log law {errors['log_law']:.3f}; {wall:.0f} s for {steps} record steps"
    )
    write_result(
        name,
        {
            "grid": {
                "nx": grid.nx,
                "ny": grid.ny,
                "nz": grid.nz,
                "lx": grid.lx,
                "lz": grid.lz,
                "stretch": grid.stretch,
                "first_cell_y_plus": float(solver.yc[0]) * args.re_tau,
                "dx_plus": grid.lx / grid.nx * args.re_tau,
                "dz_plus": grid.lz / grid.nz * args.re_tau,
            },
            "closure": args.closure,
            "re_tau_target": args.re_tau,
            "re_tau_measured": stats.re_tau,
            "initial": str(args.initial) if args.initial else "Reichardt profile + 10% disturbances",
            "spinup": args.spinup,
            "average": args.average,
            "samples": len(snaps),
            "wall_s": wall,
            "seconds_per_unit_time": wall / (args.spinup + args.average),
            "law_of_the_wall_max_rel_error": errors,
            "target": {"viscous_sublayer": 0.05, "log_law": 0.05},
            "profile": {
                "y_plus": stats.y_plus.tolist(),
                "u_plus": stats.u_plus.tolist(),
                "u_rms": stats.u_rms.tolist(),
                "v_rms": stats.v_rms.tolist(),
                "w_rms": stats.w_rms.tolist(),
                "uv": stats.uv.tolist(),
            },
            "plot": plot.name,
        },
    )


if __name__ == "__main__":
    main()
