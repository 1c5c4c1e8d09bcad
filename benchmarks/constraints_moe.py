"""(b) Mixture-of-experts hard constraints (Chalapathi, Du and Krishnapriyan 2024) against the
single global hard constraint (K = 1) and the soft constraint, on their two problems:

    diffusion-sorption  1D, PDEBench coefficients, u(0, t) = 1, T x J = 41 x 32 nodes on
                        [0, 500] x [0, 1], smooth random initial values
    navier-stokes       2D vorticity form, Li et al.'s forcing, nu = 1e-3, T x X x Y =
                        11 x 32 x 32 nodes on [0, 1] x [0, 1)^2, Gaussian random initial vorticity

Every model is the same FNO over space-time; the hard ones output N basis functions, the soft
one u itself. All are trained on the PDE residual alone (no data), as in the paper, and
scored by relative L2 against a fine solver run (our DiffusionSorption at 4x the nodes,
our spectral NS2D). "floor" is the error of the grid's own exact discrete solution: the best
any of them can reach. Reported per method: test relative L2, mean training seconds per
epoch and inference seconds for the test set (both timed after training, interleaved across
the methods so that load drifts hit all alike), speed-up of each against K = 1.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import median, time_interleaved
from surrogate.operators.constraints.hard_constrained_operator import HardConstrainedOperator
from surrogate.operators.constraints.pdes import DiffusionSorptionPDE, VorticityPDE
from surrogate.operators.constraints.soft_constraint import SoftConstrainedOperator
from surrogate.operators.constraints.spacetime_pde import SpacetimePDE
from surrogate.operators.fno import FNO
from surrogate.solvers.diffusion_sorption import DiffusionSorption, random_initial_condition
from surrogate.solvers.ns2d import NS2D, gaussian_random_field
from surrogate.training.physics import fit_physics


@dataclass
class Problem:
    pde: SpacetimePDE
    u0_train: torch.Tensor  # (B, *space)
    u0_test: torch.Tensor
    truth: torch.Tensor  # (B_test, T, *space)
    n_modes: tuple[int, ...]
    splits: list[tuple[int, ...]]  # the expert layouts to compare, global first
    points: int  # PDE cells the experts sample together per training step


def diffusion_sorption(n_train: int, n_test: int) -> Problem:
    t, j, refine = 41, 32, 4
    dt = 500.0 / (t - 1)
    fine = DiffusionSorption(refine * (j - 1) + 1, dt)
    u0_fine = random_initial_condition(n_test, fine.n_nodes, seed=1)  # a formula in x: same values on the shared nodes
    state, levels = fine.init(u0_fine), []
    for _ in range(t):
        levels.append(state.fields[:, 0, ::refine])
        state = fine.step(state)
    return Problem(
        DiffusionSorptionPDE(t, j, dt),
        random_initial_condition(n_train, j, seed=0),
        u0_fine[:, ::refine],
        torch.stack(levels, 1),
        (12, 12),
        [(1,), (2,), (4,), (8,)],
        512,
    )


def navier_stokes(n_train: int, n_test: int) -> Problem:
    t, n, nu = 11, 32, 1e-3
    solver = NS2D(resolution=n, dt=0.1)
    gen = torch.Generator().manual_seed(0)
    u0 = gaussian_random_field(n_train + n_test, n, gen)
    state, levels = solver.init(u0[n_train:], nu), []
    for _ in range(t):
        levels.append(state.fields[:, 0])
        state = solver.step(state)
    return Problem(
        VorticityPDE(t, solver, nu), u0[:n_train], u0[n_train:], torch.stack(levels, 1), (6, 12, 12), [(1, 1), (2, 1), (2, 2), (4, 2)], 2048
    )


PROBLEMS: dict[str, Callable[[int, int], Problem]] = {"diffusion-sorption": diffusion_sorption, "navier-stokes": navier_stokes}


def rel_l2(u: torch.Tensor, truth: torch.Tensor) -> float:
    return float(((u - truth).flatten(1).norm(dim=1) / truth.flatten(1).norm(dim=1)).mean())


def run_problem(name: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    prob = PROBLEMS[name](args.moe_train, args.moe_test)
    grid = prob.pde.grid

    def fno(out: int) -> FNO:
        torch.manual_seed(0)
        return FNO(1, out, 0, prob.n_modes, args.moe_width, 4, use_mask=False)

    methods: dict[str, torch.nn.Module] = {"soft": SoftConstrainedOperator(fno(1), grid[0])}
    for s in prob.splits:
        k = int(torch.tensor(s).prod())
        label = "global (K=1)" if k == 1 else f"MoE K={k} ({'x'.join(map(str, s))})"
        points = (args.moe_points or prob.points) // k
        methods[label] = HardConstrainedOperator(
            fno(args.moe_basis),
            prob.pde,
            s,
            reg=args.moe_reg,
            max_iter=args.moe_lm_iter,
            points_per_expert=points,
            overlap=args.moe_overlap,
            residual=args.moe_residual,
        )
    out: dict[str, dict[str, float]] = {"floor": {"rel_l2": rel_l2(prob.pde.solve(prob.u0_test), prob.truth)}}
    no_params = prob.u0_test.new_zeros(len(prob.u0_test), 0)
    for label, model in methods.items():
        hist = fit_physics(model, prob.pde, prob.u0_train, args.moe_epochs, args.moe_batch, lr=args.moe_lr, form=args.moe_residual)
        model.eval()
        with torch.no_grad():
            u = model(prob.u0_test, no_params)
        r, s = prob.pde.residuals(u, prob.u0_test, args.moe_residual)
        out[label] = {
            "rel_l2": rel_l2(u, prob.truth),
            "final_train_loss": hist["loss"][-1],
            "test_residual_rms": float(torch.cat([r, s], 1).square().mean().sqrt()),
            "training_seconds": sum(hist["seconds"]),
            "skipped_steps": sum(hist["skipped"]),
        }
        print(f"{name} {label}: rel L2 {out[label]['rel_l2']:.4f}", flush=True)
    # Timings after training, interleaved across methods so that load drifts hit all alike; a fit
    # that does not converge costs its full iterations and is timed, not refused.
    batch = prob.u0_train[: args.moe_batch]
    for model in methods.values():
        if isinstance(model, HardConstrainedOperator):
            model.constraint.on_failure = "warn"

    def train_step(model: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            model.train()
            model.zero_grad(set_to_none=True)
            prob.pde.loss(model(batch, batch.new_zeros(len(batch), 0)), batch, args.moe_residual).backward()

        return run

    def infer(model: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            model.eval()
            with torch.no_grad():
                model(prob.u0_test, no_params)

        return run

    steps = time_interleaved({k: train_step(m) for k, m in methods.items()}, repeats=args.moe_timing_repeats, warmup=1)
    infers = time_interleaved({k: infer(m) for k, m in methods.items()}, repeats=args.moe_timing_repeats, warmup=1)
    n_batches = -(-len(prob.u0_train) // args.moe_batch)
    for label in methods:
        out[label]["epoch_seconds"] = median(steps[label]) * n_batches
        out[label]["inference_seconds"] = median(infers[label])
    ref = out["global (K=1)"]
    for label in methods:
        rec = out[label]
        rec["train_speedup_vs_global"] = ref["epoch_seconds"] / rec["epoch_seconds"]
        rec["inference_speedup_vs_global"] = ref["inference_seconds"] / rec["inference_seconds"]
    out["_meta"] = {"grid": list(grid), "train": args.moe_train, "test": args.moe_test}
    return out


def print_tables(results: dict[str, dict[str, dict[str, float]]]) -> None:
    console = Console()
    for name, rows in results.items():
        table = Table(title=f"{name}: physics-informed training, held-out relative L2")
        for col in ("method", "rel L2", "s/epoch", "train speed-up vs K=1", "inference s", "inference speed-up"):
            table.add_column(col, justify="right")
        for label, rec in rows.items():
            if label == "_meta":
                continue
            if "epoch_seconds" not in rec:
                table.add_row(label, f"{rec['rel_l2']:.4f}", "", "", "", "")
                continue
            table.add_row(
                label,
                f"{rec['rel_l2']:.4f}",
                f"{rec['epoch_seconds']:.2f}",
                f"{rec['train_speedup_vs_global']:.2f}x",
                f"{rec['inference_seconds']:.3f}",
                f"{rec['inference_speedup_vs_global']:.2f}x",
            )
        console.print(table)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--moe-problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--moe-train", type=int, default=32)
    ap.add_argument("--moe-test", type=int, default=8)
    ap.add_argument("--moe-epochs", type=int, default=30)
    ap.add_argument("--moe-batch", type=int, default=4)
    ap.add_argument("--moe-lr", type=float, default=2e-3)
    ap.add_argument("--moe-width", type=int, default=16)
    ap.add_argument("--moe-basis", type=int, default=16, help="N, basis functions of the hard-constrained operators")
    ap.add_argument("--moe-reg", type=float, default=1e-6, help="Tikhonov weight on the basis weights")
    ap.add_argument("--moe-lm-iter", type=int, default=20, help="Levenberg-Marquardt iterations per expert")
    ap.add_argument("--moe-timing-repeats", type=int, default=10, help="interleaved timing repeats after training")
    ap.add_argument("--moe-residual", choices=["collocation", "crank-nicolson"], default="collocation", help="the PDE residual enforced")
    ap.add_argument("--moe-overlap", type=int, default=0, help="nodes by which each expert's fitted rows reach into its neighbours")
    ap.add_argument(
        "--moe-points",
        type=int,
        default=None,
        help="PDE cells sampled per training step, split evenly among the experts (default: 512 / 2048 by problem)",
    )
