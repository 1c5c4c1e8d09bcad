"""PI-HC-MoE's scaling claim (Chalapathi, Du and Krishnapriyan 2024), measured.

The paper's point: the cost of one global hard constraint grows quickly with the number of
constrained points, while K experts, each fitting its share, keep it flat and run in
parallel. Measured here on diffusion-sorption (PDEBench's coefficients and outflow end),
T = 21 time levels x J nodes, every free node a collocation point (J = 16 ... 128: 315 to
2667 constrained points), the same FNO (N = 16 basis functions) under K = 1 (global), 2, 4
and 8 space experts:

    time per training step   forward, the experts' Levenberg-Marquardt fits, and the backward
                             through the implicit-function-theorem gradient, batch of 4
    time per inference step  forward and fits (eval mode), batch of 4
    time of the fits alone   the experts' Levenberg-Marquardt solves on a fixed basis, the
                             part whose cost the paper's argument is about

on one process (the experts batched, all cores) and with the experts shared out over two
gloo processes (one core each; `MoEHardConstraint.solve(distributed=True)`). Medians of
`--repeats` calls after two warm-ups; the fits run `--lm-iter` iterations at most (timing asks
"warn" on a fit that has not converged, so that every call costs a full step).

Held-out error: `--accuracy` also trains soft, global and MoE (K = 2, 4, 8) on the residual
alone (`benchmarks/constraints_moe.py`'s diffusion-sorption problem, 41 x 32 nodes) and
scores them against a fine solver run, once per residual form of `--residuals` (the paper's
collocation form, and our Crank-Nicolson rows). Writes `moe_scaling.json` and `moe_scaling.png`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console
from rich.table import Table

from benchmarks import constraints_moe
from benchmarks.common import RESULTS, median, write_result
from surrogate.operators.constraints.hard_constrained_operator import HardConstrainedOperator, spacetime_input
from surrogate.operators.constraints.pdes import DiffusionSorptionPDE
from surrogate.operators.fno import FNO
from surrogate.solvers.diffusion_sorption import random_initial_condition
from surrogate.training.distributed import run_local_ranks

T_LEVELS, T_END = 21, 500.0


def timed(fn: Any, repeats: int) -> float:
    """Median seconds of fn() over `repeats` calls after one warm-up, all ranks in step."""
    distributed = dist.is_available() and dist.is_initialized()
    fn()
    fn()
    times = []
    for _ in range(repeats):
        if distributed:
            dist.barrier()
        t0 = time.perf_counter()
        fn()
        if distributed:
            dist.barrier()
        times.append(time.perf_counter() - t0)
    return median(times)


def time_steps(args: argparse.Namespace, progress: bool = True) -> dict[str, dict[str, float]]:
    """Seconds per training and inference step for every (J, K); runs on each rank alike."""
    distributed = dist.is_available() and dist.is_initialized()
    out: dict[str, dict[str, float]] = {}
    for j in args.nodes:
        pde = DiffusionSorptionPDE(T_LEVELS, j, T_END / (T_LEVELS - 1))
        u0 = random_initial_condition(args.batch, j, seed=0)
        params = u0.new_zeros(args.batch, 0)
        for k in args.experts:
            torch.manual_seed(0)
            fno = FNO(1, args.basis, 0, (8, 8), args.width, 4, use_mask=False)
            model = HardConstrainedOperator(fno, pde, (k,), reg=args.reg, max_iter=args.lm_iter, on_failure="warn", distributed=distributed)

            def train_step() -> None:
                model.train()
                model.zero_grad(set_to_none=True)
                pde.loss(model(u0, params), u0, "collocation").backward()

            def infer() -> None:
                model.eval()
                with torch.no_grad():
                    model(u0, params)

            with torch.no_grad():
                basis = fno(spacetime_input(u0, T_LEVELS).float(), params.float()).double()

            def solve() -> None:
                model.eval()
                with torch.no_grad():
                    model.weights(basis, u0.double())

            rows = int(model._rows["cell_mask"].sum())  # constrained PDE points, all experts together
            out[f"J={j} K={k}"] = {
                "nodes": j,
                "experts": k,
                "constrained_points": rows,
                "train_step_s": timed(train_step, args.repeats),
                "inference_step_s": timed(infer, args.repeats),
                "solve_s": timed(solve, args.repeats),
            }
            if progress:
                rec = out[f"J={j} K={k}"]
                print(
                    f"J={j:4d} K={k}: {rows} points, train {rec['train_step_s']:.3f} s, infer {rec['inference_step_s']:.3f} s", flush=True
                )
    return out


def plot(results: dict[str, Any], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharex=True)
    keys = ("train_step_s", "inference_step_s", "solve_s")
    for ax, key, title in zip(axes, keys, ("training step", "inference step", "constraint solve (the fits alone)")):
        for procs, style in (("1 process", "-o"), ("2 processes", "--s")):
            for k in sorted({r["experts"] for r in results[procs].values()}):
                recs = sorted((r for r in results[procs].values() if r["experts"] == k), key=lambda r: r["constrained_points"])
                label = ("global" if k == 1 else f"K={k}") + f", {procs}"
                ax.plot([r["constrained_points"] for r in recs], [r[key] for r in recs], style, label=label, color=f"C{k.bit_length() - 1}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("constrained points (collocation nodes)")
        ax.set_ylabel("seconds")
        ax.set_title(f"time per {title}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, nargs="+", default=[16, 32, 64, 128], help="J, nodes in space (T = 21 levels)")
    ap.add_argument("--experts", type=int, nargs="+", default=[1, 2, 4, 8], help="K, space experts (1 = global)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--basis", type=int, default=16)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--reg", type=float, default=1e-6)
    ap.add_argument("--lm-iter", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--accuracy", action="store_true", help="also train and score on held-out data (several minutes)")
    ap.add_argument("--residuals", nargs="+", default=["collocation", "crank-nicolson"], choices=["collocation", "crank-nicolson"])
    constraints_moe.add_arguments(ap)
    args = ap.parse_args()
    results: dict[str, Any] = {"1 process": time_steps(args)}
    results["2 processes"] = run_local_ranks(time_steps, (args,), 2, "cpu")
    for key, rec in results["2 processes"].items():
        rec["speedup_vs_1_process"] = results["1 process"][key]["train_step_s"] / rec["train_step_s"]
    for procs in results:
        for rec in results[procs].values():
            ref = results[procs][f"J={rec['nodes']} K=1"]
            rec["train_speedup_vs_global"] = ref["train_step_s"] / rec["train_step_s"]
            rec["inference_speedup_vs_global"] = ref["inference_step_s"] / rec["inference_step_s"]
            rec["solve_speedup_vs_global"] = ref["solve_s"] / rec["solve_s"]
    table = Table(title="PI-HC-MoE scaling on diffusion-sorption: seconds per step (speed-up against the global constraint)")
    for col in ("points", "K", "train, 1 proc", "train, 2 procs", "infer, 1 proc", "infer, 2 procs", "solve, 1 proc", "solve, 2 procs"):
        table.add_column(col, justify="right")
    for key, one in results["1 process"].items():
        two = results["2 processes"][key]
        table.add_row(
            str(one["constrained_points"]),
            "global" if one["experts"] == 1 else str(one["experts"]),
            f"{one['train_step_s']:.3f} ({one['train_speedup_vs_global']:.2f}x)",
            f"{two['train_step_s']:.3f} ({two['train_speedup_vs_global']:.2f}x)",
            f"{one['inference_step_s']:.3f} ({one['inference_speedup_vs_global']:.2f}x)",
            f"{two['inference_step_s']:.3f} ({two['inference_speedup_vs_global']:.2f}x)",
            f"{one['solve_s']:.3f} ({one['solve_speedup_vs_global']:.2f}x)",
            f"{two['solve_s']:.3f} ({two['solve_speedup_vs_global']:.2f}x)",
        )
    Console().print(table)
    if args.accuracy:
        results["held_out"] = {}
        for form in args.residuals:
            args.moe_residual = form
            results["held_out"][form] = constraints_moe.run_problem("diffusion-sorption", args)
            constraints_moe.print_tables({f"diffusion-sorption, {form} residual": results["held_out"][form]})
    plot(results, RESULTS / "moe_scaling.png")
    sizes = {"time_levels": T_LEVELS, **{k: v for k, v in vars(args).items() if not k.startswith("moe_") or args.accuracy}}
    print(f"wrote {write_result('moe_scaling', {'sizes': sizes, 'results': results})} and {RESULTS / 'moe_scaling.png'}")


if __name__ == "__main__":
    main()
