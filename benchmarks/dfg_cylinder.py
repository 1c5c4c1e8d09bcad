"""The DFG cylinder benchmark (Schaefer & Turek 1996) on the body-fitted Taylor-Hood solver.

2D-1 (Re = 20, steady, Newton) on a sequence of meshes, and 2D-2 (Re = 100, periodic
shedding, BDF2) on the meshes and time steps given, each against the paper's bands (the peer
here is the published reference). Prints both tables, writes
benchmarks/results/<name>.json and a plot of the drag and lift coefficients of the 2D-2 runs.

    python -m benchmarks.dfg_cylinder                       # the committed result
    python -m benchmarks.dfg_cylinder --levels 16 32 --runs 32:0.005 --name dfg_smoke
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from benchmarks.common import RESULTS, write_result
from surrogate.solvers.cylinder_mesh import MeshSpec
from surrogate.solvers.dfg import REFERENCE, in_band, periodic_2d2, steady_2d1


def run_spec(text: str) -> tuple[int, float]:
    """'N:DT' -> (n_cylinder, dt)."""
    n, dt = text.split(":")
    return int(n), float(dt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=int, nargs="+", default=[16, 32, 64, 128], help="2D-1: edges on the cylinder per mesh")
    ap.add_argument(
        "--runs", type=run_spec, nargs="+", default=[(64, 0.0025), (96, 0.0025)], help="2D-2: N:DT pairs (cylinder edges, time step)"
    )
    ap.add_argument("--spinup-time", type=float, default=5.0, help="2D-2: time run with --spinup-dt from rest")
    ap.add_argument("--spinup-dt", type=float, default=0.01)
    ap.add_argument("--measure-time", type=float, default=3.0, help="2D-2: time run with the run's dt after the spin-up")
    ap.add_argument("--periods", type=int, default=2, help="2D-2: measure over the last this many lift periods")
    ap.add_argument("--name", default="dfg_cylinder")
    args = ap.parse_args()
    console = Console()

    steady = []
    for n in args.levels:
        r = steady_2d1(MeshSpec(n_cylinder=n))
        steady.append({"n_cylinder": n, **asdict(r), **{f"{k}_in_band": in_band(getattr(r, k), b) for k, b in REFERENCE["2D-1"].items()}})
    table = Table(title="DFG 2D-1 (Re = 20), steady; bands: " + ", ".join(f"{k} {b}" for k, b in REFERENCE["2D-1"].items()))
    for col in ("cylinder edges", "dofs", "drag", "lift", "pressure difference", "all in band", "seconds"):
        table.add_column(col, justify="right")
    for s in steady:
        ok = all(s[f"{k}_in_band"] for k in REFERENCE["2D-1"])
        table.add_row(
            str(s["n_cylinder"]),
            str(s["dofs"]),
            f"{s['drag']:.5f}",
            f"{s['lift']:.6f}",
            f"{s['pressure_difference']:.5f}",
            str(ok),
            f"{s['seconds']:.1f}",
        )
    console.print(table)

    periodic, series = [], []
    protocol = {"spinup_time": args.spinup_time, "spinup_dt": args.spinup_dt, "measure_time": args.measure_time, "periods": args.periods}

    def save() -> None:  # after every run, so that a long run cut short keeps what finished
        write_result(args.name, {"reference": REFERENCE, "steady_2d1": steady, "periodic_2d2": periodic, "protocol_2d2": protocol})

    save()
    for n, dt in args.runs:
        steps = round(args.spinup_time / args.spinup_dt) + round(args.measure_time / dt)
        with Progress(
            TextColumn(f"2D-2 n_cylinder={n} dt={dt}"),
            BarColumn(),
            TextColumn("t = {task.fields[t]:.2f}"),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("", total=steps, t=0.0)
            r = periodic_2d2(
                MeshSpec(n_cylinder=n),
                dt=dt,
                spinup_dt=args.spinup_dt,
                spinup_time=args.spinup_time,
                measure_time=args.measure_time,
                periods=args.periods,
                on_step=lambda s: bar.update(task, advance=1, t=s.time),
            )
        series.append((n, dt, r))
        periodic.append(
            {
                "n_cylinder": n,
                "dt": dt,
                **{k: v for k, v in asdict(r).items() if k not in ("time", "drag", "lift")},
                **{f"{k}_in_band": in_band(getattr(r, k), b) for k, b in REFERENCE["2D-2"].items()},
            }
        )
        save()
    table = Table(title="DFG 2D-2 (Re = 100), periodic; bands: " + ", ".join(f"{k} {b}" for k, b in REFERENCE["2D-2"].items()))
    for col in ("cylinder edges", "dt", "dofs", "drag max", "lift max", "Strouhal", "drift", "all in band", "seconds"):
        table.add_column(col, justify="right")
    for p in periodic:
        ok = all(p[f"{k}_in_band"] for k in REFERENCE["2D-2"])
        table.add_row(
            str(p["n_cylinder"]),
            str(p["dt"]),
            str(p["dofs"]),
            f"{p['drag_max']:.4f}",
            f"{p['lift_max']:.4f}",
            f"{p['strouhal']:.4f}",
            f"{p['drift']:.1e}",
            str(ok),
            f"{p['seconds']:.0f}",
        )
    console.print(table)

    if series:
        fig, (ax_d, ax_l) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
        for n, dt, r in series:
            ax_d.plot(r.time, r.drag, label=f"{n} edges, dt {dt}")
            ax_l.plot(r.time, r.lift)
        for ax, key, name in ((ax_d, "drag_max", "drag"), (ax_l, "lift_max", "lift")):
            for bound in REFERENCE["2D-2"][key]:
                ax.axhline(bound, color="k", lw=0.5, ls="--")
            ax.set_ylabel(f"{name} coefficient")
        ax_d.legend(fontsize=8)
        ax_l.set_xlabel("t")
        fig.suptitle("DFG 2D-2 after the spin-up (dashed: the paper's bands for the maxima)")
        fig.tight_layout()
        RESULTS.mkdir(parents=True, exist_ok=True)
        fig.savefig(RESULTS / f"{args.name}.png", dpi=120)
    console.print(f"wrote {RESULTS / args.name}.json")


if __name__ == "__main__":
    main()
