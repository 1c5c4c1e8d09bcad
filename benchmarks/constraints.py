"""(a) ProbConserv on ProbConserv's GPME cases (heat, porous medium, Stefan).

One-step operators u(t_k) -> u(t_k+1) on GPME data from our finite-volume solver, scored on
held-out parameters as Hansen et al. score them: MSE, conservation error |int u dx - b|,
log-likelihood (the Gaussian's, per value), and for Stefan the error of the front (shock)
position. b is what physics knows without the solution: the initial mass plus the mass that
entered through the boundaries by the target's time (the store's `u_boundary_inflow`, summed
from the solver's boundary fluxes; zero for the periodic heat case, the inflow at x = 0 for
PME and Stefan). It never reads the target, so the same b serves autoregressive rollouts:
each method is also rolled out from u(0) over the whole trajectory, constrained at every
step by b(t_k), and scored at the last step. Compared, all trained with the same budget:

    unconstrained   FNO with a variance head, Gaussian NLL
    soft            the same plus a penalty lambda (int u dx - b)^2 in the loss
    hard projection the unconstrained mean projected onto int u dx = b (variance ignored)
    ProbConserv     the unconstrained Gaussian conditioned on int u dx = b (sigma_G = 0)
    ensemble+PC     ProbConserv on a deep ensemble of three such FNOs

The paper's own setting is run beside it, on the same data: an attentive neural process
(`surrogate.operators.anp`, ProbConserv's architecture) sees `--anp-contexts` observations
(t, x, u) of a trajectory at random space-time points and predicts u on the whole space-time
grid; ProbConserv conditions each time slice on its integral b(t). Compared there: ANP,
SoftC-ANP (trained with the penalty), HardC-ANP (the mean projected) and ProbConserv-ANP,
as in the paper's Table 1, scored over every (t > 0, x) target.

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
from surrogate.operators.anp import AttentiveNeuralProcess
from surrogate.operators.constraints.conserved_integrals import cell_widths
from surrogate.operators.constraints.probconserv import (
    ProbConserv,
    conservation_rhs,
    gaussian_nll,
    hard_projection,
    integral_constraint,
    probconserv_update,
)
from surrogate.operators.ensemble import DeepEnsemble
from surrogate.operators.gaussian_fno import GaussianFNO, split_gaussian
from surrogate.solvers.gpme import stefan_front
from surrogate.training.gaussian import fit_gaussian

METHODS = ("unconstrained", "soft", "hard projection", "ProbConserv", "ensemble+PC")
ANP_METHODS = ("ANP", "SoftC-ANP", "HardC-ANP", "ProbConserv-ANP")


def trajectories(store: GridStore, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """u (B, T, N), params (B, 1) and the conservation law's right-hand side b (B, T) of `split`:
    b from the initial state and the recorded boundary inflow only."""
    idx = store.splits[split]
    u = torch.from_numpy(np.stack([store.read(int(i), 0, store.n_steps)[:, 0] for i in idx])).double()
    widths = torch.from_numpy(cell_widths(store.schema.coords["x"], store.schema.boundary["x"] == "periodic"))
    b = conservation_rhs(u[:, 0], widths, torch.from_numpy(store.boundary_inflow["u"][idx]))
    return u, torch.from_numpy(store.params[idx]).double(), b


def pairs(u: torch.Tensor, params: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """x (P, 1, N), params (P, 1), y (P, 1, N), b (P, 1) for every consecutive pair of steps."""
    n, t = u.shape[:2]
    return (
        u[:, :-1].reshape(n * (t - 1), 1, -1),
        params.repeat_interleave(t - 1, 0),
        u[:, 1:].reshape(n * (t - 1), 1, -1),
        b[:, 1:].reshape(-1, 1),
    )


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
    xtr, ptr, ytr, btr = pairs(*trajectories(store, "train"))
    u_te, p_traj, b_traj = trajectories(store, "test")
    xte, pte, yte, b_te = pairs(u_te, p_traj, b_traj)
    scale = float(ytr.abs().max())  # u_n = u / scale keeps the constraint homogeneous
    norm = lambda u: (u / scale).float()  # noqa: E731
    pn = lambda p: ((p - off) / sc).float()  # noqa: E731
    g = integral_constraint(torch.full((args.cells,), dx, dtype=torch.float64))  # (1, N)

    gen = torch.Generator().manual_seed(0)

    def batches():
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(perm), args.batch):
            j = perm[i : i + args.batch]
            yield norm(xtr[j]), pn(ptr[j]), norm(ytr[j]), (btr[j] / scale).float()

    def penalty(mean, target, params, b):  # the soft constraint: the same b, from the boundary fluxes
        return args.soft_weight * (mean.sum(-1) * dx - b).square().mean()

    def make(k: int) -> torch.nn.Module:
        kw = {"n_modes": (args.modes,), "hidden_channels": args.width, "n_layers": 4}
        return DeepEnsemble(1, 1, 1, n_members=k, **kw) if k > 1 else GaussianFNO(1, 1, 1, **kw)

    t0 = time.perf_counter()
    models = {"unconstrained": make(1), "soft": make(1), "ensemble": make(3)}
    for name, m in models.items():
        fit_gaussian(m, batches, args.epochs, lr=args.lr, penalty=penalty if name == "soft" else None)
    train_s = time.perf_counter() - t0

    def predict(name: str, x: torch.Tensor, p: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance (physical units, float64) of method `name` from states x (P, 1, N), b (P, 1)."""
        xn, pnn, b_n = norm(x), pn(p), b / scale
        if name in ("ProbConserv", "ensemble+PC"):
            post = ProbConserv(models["unconstrained" if name == "ProbConserv" else "ensemble"])(xn, pnn, g, b_n)
            mean, var = post.mean, post.var
        else:
            mean, var = (t.double() for t in split_gaussian(models["soft" if name == "soft" else "unconstrained"](xn, pnn)))
            if name == "hard projection":
                mean = hard_projection(mean.flatten(1), g, b_n).view_as(mean)
        return mean * scale, var * scale**2

    def score(mean: torch.Tensor, var: torch.Tensor, truth: torch.Tensor, b: torch.Tensor, p: torch.Tensor) -> dict[str, float]:
        rec = {
            "mse": float((mean - truth).square().mean()),
            "conservation_error": float(((mean.sum(-1) * dx) - b).abs().mean()),
            "log_likelihood": -float(gaussian_nll(mean.flatten(1), var.flatten(1), truth.flatten(1)).mean()),
        }
        if case == "stefan":
            xc = torch.from_numpy(store.schema.coords["x"]).double()
            front = stefan_front(mean[:, 0], xc, p[:, 0]) - stefan_front(truth[:, 0], xc, p[:, 0])
            rec["shock_position_error"] = float(front.abs().mean())
        return rec

    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        for name in METHODS:
            rec = score(*predict(name, xte, pte, b_te), yte, b_te, pte)
            state = u_te[:, :1]  # (B, 1, N): the rollout from u(0), b(t_k) at every step
            for k in range(1, u_te.shape[1]):
                state, var = predict(name, state, p_traj, b_traj[:, k : k + 1])
            rollout = score(state, var, u_te[:, -1:], b_traj[:, -1:], p_traj)
            out[name] = rec | {f"rollout_{key}": value for key, value in rollout.items()}
    out["_meta"] = {"train_seconds_all_models": train_s, "test_pairs": len(xte)}
    if args.anp_steps > 0:
        out |= anp_case(case, store, args)
    return out


def anp_sets(
    u: torch.Tensor, b: torch.Tensor, t: torch.Tensor, x: torch.Tensor, n_ctx: int, slices: int | None, gen: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """Contexts (B, n_ctx, 2) locations and (B, n_ctx, 1) values at random (t, x) of each function;
    targets: `slices` random time levels of each (all when None) at every cell, (B, S N, 2) and
    (B, S N, 1); their right-hand sides b (B, S). u (B, T, N) and b (B, T) in model units."""
    n, levels, cells = u.shape
    rows = torch.arange(n)[:, None]
    ti, xi = torch.randint(0, levels, (n, n_ctx), generator=gen), torch.randint(0, cells, (n, n_ctx), generator=gen)
    cx, cy = torch.stack([t[ti], x[xi]], -1), u[rows, ti, xi][..., None]
    tt = (
        torch.arange(levels).expand(n, levels)
        if slices is None
        else torch.stack([torch.randperm(levels, generator=gen)[:slices] for _ in range(n)])
    )
    grid_t, grid_x = t[tt][..., None].expand(-1, -1, cells), x.expand(n, tt.shape[1], cells)
    tx = torch.stack([grid_t, grid_x], -1).reshape(n, -1, 2)
    return cx.float(), cy.float(), tx.float(), u[rows, tt].reshape(n, -1, 1).float(), b[rows, tt]


def anp_case(case: str, store: GridStore, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """The paper's setting on `store`: ANP, SoftC-ANP, HardC-ANP and ProbConserv-ANP (see the docstring)."""
    u_tr, _, b_tr = trajectories(store, "train")
    u_te, p_te, b_te = trajectories(store, "test")
    xc = torch.from_numpy(store.schema.coords["x"]).double()
    dx = float(xc[1] - xc[0])
    scale = float(u_tr.abs().max())
    t = torch.from_numpy(store.schema.time).double()
    t_n, x_n = t / t[-1], xc / (xc[-1] + dx / 2)  # locations in [0, 1]
    levels, cells = u_te.shape[1:]
    g = integral_constraint(torch.full((cells,), dx, dtype=torch.float64), groups=levels)  # one integral per time slice

    def fit(soft: bool) -> AttentiveNeuralProcess:
        torch.manual_seed(0)
        model = AttentiveNeuralProcess(hidden=args.anp_hidden)
        opt = torch.optim.Adam(model.parameters(), lr=args.anp_lr)
        gen = torch.Generator().manual_seed(1)
        for _ in range(args.anp_steps):
            pick = torch.randint(0, len(u_tr), (args.batch,), generator=gen)
            cx, cy, tx, ty, bb = anp_sets(u_tr[pick] / scale, b_tr[pick] / scale, t_n, x_n, args.anp_contexts, 4, gen)
            loss, mean = model.elbo_loss(cx, cy, tx, ty)
            if soft:
                mass = mean.view(len(pick), -1, cells).sum(-1) * dx  # (B, 4) per slice
                loss = loss + args.soft_weight * (mass - bb.float()).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return model.eval()

    t0 = time.perf_counter()
    models = {"ANP": fit(False), "SoftC-ANP": fit(True)}
    train_s = time.perf_counter() - t0
    cx, cy, tx, ty, bb = anp_sets(u_te / scale, b_te / scale, t_n, x_n, args.anp_contexts, None, torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.manual_seed(3)
        preds = {name: m(cx, cy, tx) for name, m in models.items()}
    mean, var = (a[..., 0].double() for a in preds["ANP"])  # (B, T N)
    preds["HardC-ANP"] = (hard_projection(mean, g, bb)[..., None], var[..., None])
    post = probconserv_update(mean, var, g, bb)
    preds["ProbConserv-ANP"] = (post.mean[..., None], post.var[..., None])
    out: dict[str, dict[str, float]] = {}
    truth = ty[..., 0].double().view(len(u_te), levels, cells)[:, 1:] * scale  # t > 0
    b_phys = (bb * scale)[:, 1:]
    for name in ANP_METHODS:
        m, v = (a[..., 0].double().view(len(u_te), levels, cells)[:, 1:] for a in preds[name])
        m, v = m * scale, v * scale**2
        rec = {
            "mse": float((m - truth).square().mean()),
            "conservation_error": float((m.sum(-1) * dx - b_phys).abs().mean()),
            "log_likelihood": -float(gaussian_nll(m.flatten(1), v.flatten(1), truth.flatten(1)).mean()),
        }
        if case == "stefan":
            ps = p_te[:, 0].repeat_interleave(levels - 1)
            front = stefan_front(m.flatten(0, 1), xc, ps) - stefan_front(truth.flatten(0, 1), xc, ps)
            rec["shock_position_error"] = float(front.abs().mean())
        out[name] = rec
    out["_meta_anp"] = {"train_seconds_both_models": train_s, "test_functions": len(u_te), "contexts": args.anp_contexts}
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
    ap.add_argument("--anp-steps", type=int, default=600, help="ANP training steps (0: skip the paper's ANP setting)")
    ap.add_argument("--anp-contexts", type=int, default=100, help="observations the ANP sees per trajectory")
    ap.add_argument("--anp-hidden", type=int, default=128)
    ap.add_argument("--anp-lr", type=float, default=1e-3)
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
    short = {"mse": "MSE", "conservation_error": "CE", "log_likelihood": "LL", "shock_position_error": "shock pos. err"}
    for case, rows in results.items():
        for prefix, what, methods in (
            ("", "held-out one-step predictions", METHODS),
            ("rollout_", "rollouts from u(0), last step", METHODS),
            ("", "the paper's setting: ANP from context points, every (t > 0, x)", ANP_METHODS),
        ):
            if methods[0] not in rows:
                continue
            table = Table(title=f"GPME {case}: {what}")
            metrics = [k for k in short if f"{prefix}{k}" in rows[methods[0]]]
            table.add_column("method")
            for k in metrics:
                table.add_column(short[k], justify="right")
            for name in methods:
                table.add_row(name, *[f"{rows[name][prefix + k]:.3e}" for k in metrics])
            console.print(table)
    path = write_result("constraints_probconserv", {"sizes": vars(args), "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
