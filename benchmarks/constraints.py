"""(a) ProbConserv on ProbConserv's GPME cases (heat, porous medium, Stefan).

One-step operators u(t_k) -> u(t_k+1) on GPME data from our finite-volume solver, scored on
held-out parameters as Hansen et al. score them: MSE, conservation error |int u dx - b|,
Gaussian negative log-likelihood, and for Stefan the error of the front position. b is the
mass the conservation law gives for the target step (the solver's own mass, which changes
only by the boundary flux). Compared, all trained with the same budget:

    unconstrained   FNO with a variance head, Gaussian NLL
    soft            the same plus a penalty lambda (int u dx - b)^2 in the loss
    hard projection the unconstrained mean projected onto int u dx = b (variance ignored)
    ProbConserv     the unconstrained Gaussian conditioned on int u dx = b (sigma_G = 0)
    ensemble+PC     ProbConserv on a deep ensemble of three such FNOs

Target: ProbConserv's conservation error at round-off with MSE no worse than unconstrained.

Part (b), mixture-of-experts hard constraints against the global one and the soft one, is in
`benchmarks/constraints_moe.py`; `--part b` runs it (its options are listed by --help).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from benchmarks import constraints_moe
from benchmarks.common import write_result
from surrogate.datasets.store import GridStore
from surrogate.generate import GPMEDataConfig, generate_gpme
from surrogate.operators.constraints.probconserv import ProbConserv, gaussian_nll, hard_projection, integral_constraint
from surrogate.operators.ensemble import DeepEnsemble
from surrogate.operators.gaussian_fno import GaussianFNO, split_gaussian
from surrogate.solvers.gpme import stefan_front
from surrogate.training.gaussian import fit_gaussian


def pairs(store: GridStore, split: str) -> tuple[torch.Tensor, ...]:
    """x (P, 1, N), params (P, 1), y (P, 1, N) for every consecutive pair of steps of `split`."""
    idx = store.splits[split]
    data = torch.from_numpy(np.stack([store.read(int(i), 0, store.n_steps) for i in idx])).double()  # (B, T, 1, N)
    b, t = data.shape[:2]
    x = data[:, :-1].reshape(b * (t - 1), 1, -1)
    y = data[:, 1:].reshape(b * (t - 1), 1, -1)
    p = torch.from_numpy(store.params[idx]).double().repeat_interleave(t - 1, 0)
    return x, p, y


def run_case(case: str, args: argparse.Namespace, root: Path) -> dict[str, dict[str, float]]:
    cfg = GPMEDataConfig(
        case,
        n_trajectories=args.trajectories,
        n_cells=args.cells,
        n_steps=args.steps,
        dt=args.dt,
        max_substep=args.dt / 20,
        test_fraction=0.2,
        valid_fraction=0.0,
    )
    store = GridStore(generate_gpme(cfg, root / f"{case}.h5"))
    dx = float(store.schema.coords["x"][1] - store.schema.coords["x"][0])
    off, sc = store.schema.param_offset[0], store.schema.param_scale[0]
    xtr, ptr, ytr = pairs(store, "train")
    xte, pte, yte = pairs(store, "test")
    scale = float(ytr.abs().max())  # u_n = u / scale keeps the constraint homogeneous
    norm = lambda u: (u / scale).float()  # noqa: E731
    pn = lambda p: ((p - off) / sc).float()  # noqa: E731
    g = integral_constraint(torch.full((args.cells,), dx, dtype=torch.float64))  # (1, N)
    b_te = yte.sum(-1) * dx  # (P, 1) the conserved mass of each target step

    gen = torch.Generator().manual_seed(0)

    def batches():
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(perm), args.batch):
            j = perm[i : i + args.batch]
            yield norm(xtr[j]), pn(ptr[j]), norm(ytr[j])

    def penalty(mean, target, params):
        return args.soft_weight * ((mean.sum(-1) - target.sum(-1)) * dx).square().mean()

    def make(k: int) -> torch.nn.Module:
        kw = {"n_modes": (args.modes,), "hidden_channels": args.width, "n_layers": 4}
        return DeepEnsemble(1, 1, 1, n_members=k, **kw) if k > 1 else GaussianFNO(1, 1, 1, **kw)

    t0 = time.perf_counter()
    models = {"unconstrained": make(1), "soft": make(1), "ensemble": make(3)}
    for name, m in models.items():
        fit_gaussian(m, batches, args.epochs, lr=args.lr, penalty=penalty if name == "soft" else None)
    train_s = time.perf_counter() - t0

    with torch.no_grad():
        x, p = norm(xte), pn(pte)
        b_n = b_te / scale
        preds: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        mean, var = split_gaussian(models["unconstrained"](x, p))
        preds["unconstrained"] = (mean.double(), var.double())
        preds["soft"] = tuple(t.double() for t in split_gaussian(models["soft"](x, p)))  # type: ignore[assignment]
        preds["hard projection"] = (hard_projection(mean.double().flatten(1), g, b_n).view_as(mean), var.double())
        for name, model in (("ProbConserv", models["unconstrained"]), ("ensemble+PC", models["ensemble"])):
            post = ProbConserv(model)(x, p, g, b_n)
            preds[name] = (post.mean, post.var)
    out: dict[str, dict[str, float]] = {}
    for name, (m, v) in preds.items():
        m_phys, v_phys = m * scale, v * scale**2
        rec = {
            "mse": float((m_phys - yte).square().mean()),
            "conservation_error": float(((m_phys.sum(-1) * dx) - b_te).abs().mean()),
            "nll": float(gaussian_nll(m_phys.flatten(1), v_phys.flatten(1), yte.flatten(1)).mean()),
        }
        if case == "stefan":
            xc = torch.from_numpy(store.schema.coords["x"]).double()
            front_pred = stefan_front(m_phys[:, 0], xc, pte[:, 0])
            front_true = stefan_front(yte[:, 0], xc, pte[:, 0])
            rec["shock_position_error"] = float((front_pred - front_true).abs().mean())
        out[name] = rec
    out["_meta"] = {"train_seconds_all_models": train_s, "test_pairs": len(xte)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["a", "b", "all"], default="all", help="a: ProbConserv on GPME; b: MoE hard constraints")
    ap.add_argument("--cases", nargs="+", default=["heat", "pme", "stefan"])
    ap.add_argument("--trajectories", type=int, default=40)
    ap.add_argument("--cells", type=int, default=64)
    ap.add_argument("--steps", type=int, default=11)
    ap.add_argument("--dt", type=float, default=0.05)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--modes", type=int, default=16)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--soft-weight", type=float, default=10.0)
    moe = ap.add_argument_group("part b")
    constraints_moe.add_arguments(moe)
    args = ap.parse_args()
    if args.part in ("b", "all"):
        moe_results = {name: constraints_moe.run_problem(name, args) for name in args.moe_problems}
        constraints_moe.print_tables(moe_results)
        print(f"wrote {write_result('constraints_moe', {'sizes': vars(args), 'results': moe_results})}")
    if args.part == "b":
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            results[case] = run_case(case, args, Path(tmp))
    console = Console()
    for case, rows in results.items():
        table = Table(title=f"GPME {case}: held-out one-step predictions")
        metrics = [k for k in next(iter(rows.values())) if not k.startswith("_")]
        table.add_column("method")
        for k in metrics:
            table.add_column(k, justify="right")
        for name, rec in rows.items():
            if name != "_meta":
                table.add_row(name, *[f"{rec[k]:.3e}" for k in metrics])
        console.print(table)
    path = write_result("constraints_probconserv", {"sizes": vars(args), "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
