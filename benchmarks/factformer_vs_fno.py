"""IFactFormer-m, IFactFormer-o and a 3D FNO trained on filtered DNS, against LES with DSM and
WALE on the same coarse grid: Yang et al.'s comparison at CPU scale.

Data, as the paper builds it:
  - a DNS: the built-in solver without a model (`--dns`, generated when absent). Its default
    is the run that meets the law of the wall: 32 x 48 x 32 on pi x 2 x pi/2 at Re_tau 180,
    within 3% in the log layer. It has 3 trajectories of `--steps` + 1 snapshots, `--dt`
    apart, after a spin-up;
  - filtered to the coarse grid `--coarse` (16 x 24 x 16): a sharp spectral filter in x and
    z, and interpolation in y onto the coarse LES grid's cell centres. The split is the
    authors': the last trajectory tests, and of the others the first 80% train (here 1
    train, 1 valid).
The networks are trained with the same budget (epochs, wall-clock cap, lr, batch, input
noise) on the filtered velocity. IFactFormer is the paper's architecture; its size defaults
to the paper preset (1,163,187 parameters), whose steps take about 25 s on one CPU core at
16 x 24 x 16 and batch 5, so CPU runs pass a smaller width (`--ff-*`).
Each network is rolled out `--steps` steps from the test trajectory's first filtered
snapshot. The LES with DSM and with WALE run on the coarse grid from the same filtered state.

Reported against the filtered DNS over the same snapshots 1..steps:
  - statistics error per quantity: relative L2 difference of U+, u', v', w' rms, -u'v' (wall
    units) and the streamwise-velocity spectra E_uu(k_x), E_uu(k_z) at y+ = 15;
  - velocity relative L2 at steps 1, 10, 100 and the last step (a chaotic flow decorrelates,
    so late values near sqrt(2) are expected of any model);
  - energy: kinetic energy / initial at those steps (stability);
  - seconds per step: the surrogate's forward pass against an LES step over the same dt,
    same device.

    python -m benchmarks.factformer_vs_fno --epochs 30 --max-time 900
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import RESULTS, write_result
from surrogate.datasets.channel import ChannelData, filter_to_les, write_channel_store
from surrogate.datasets.store import GridStore
from surrogate.errors import InputError
from surrogate.evaluation.evaluate import truth_and_start
from surrogate.evaluation.long_rollout import PROFILES
from surrogate.evaluation.rollout import rollout
from surrogate.evaluation.surrogate_stepper import SurrogateStepper
from surrogate.evaluation.turbulence import channel_statistics
from surrogate.generate.channel import ChannelGenConfig, generate_channel
from surrogate.operators.persistence import Persistence
from surrogate.operators.surrogate import Surrogate
from surrogate.solvers.channel import ChannelGrid, ChannelSolver
from surrogate.tasks.base import ModelSpec
from surrogate.tasks.grid import DataConfig, EvalConfig, GridConfig, load_surrogate, run_train
from surrogate.training.trainer import TrainConfig

QUANTITIES = (*PROFILES, "spectrum_x", "spectrum_z")
VELOCITY = ["velocity_x", "velocity_y", "velocity_z"]


def models(args: argparse.Namespace, shape: tuple[int, ...]) -> dict[str, ModelSpec]:
    modes = [max(2, n // 2) for n in shape]
    ff = {"dim": args.ff_dim, "dim_head": args.ff_dim_head, "heads": args.ff_heads, "n_layer": args.ff_n_layer}
    return {
        "IFactFormer-m": ModelSpec("factformer", {**ff, "variant": "m"}),
        "IFactFormer-o": ModelSpec("factformer", {**ff, "variant": "o"}),
        "FNO3D": ModelSpec("fno", {"n_modes": modes, "hidden_channels": args.fno_width, "n_layers": 4}),
    }


def dns_store(args: argparse.Namespace, console: Console) -> GridStore:
    if not args.dns.exists():
        gen = ChannelGenConfig(
            *args.dns_grid,
            lx=math.pi,
            lz=math.pi / 2,
            re_tau=args.re_tau,
            closure="none",
            n_trajectories=3,
            n_snapshots=args.steps + 1,
            dt=args.dt,
            spinup=args.spinup,
            device=args.device,
        )
        t0 = time.perf_counter()
        args.dns.parent.mkdir(parents=True, exist_ok=True)
        generate_channel(gen, args.dns)
        console.print(f"generated the DNS {args.dns} in {time.perf_counter() - t0:.0f} s")
    return GridStore(args.dns)


def filtered_store(dns: GridStore, coarse: ChannelGrid, method: str, out: Path) -> GridStore:
    """The DNS filtered onto the coarse LES grid (its cell centres in y), one trajectory at a time."""
    s = dns.schema
    names = list(dns.channel_names)
    order = [names.index(c) for c in (*VELOCITY, "p")]
    y_coarse = coarse.centres().numpy()
    parts = []
    for b in range(dns.n_trajectories):
        a = dns.read(b, 0, dns.n_steps)[:, order]  # (T, 4, Nx, Ny, Nz)
        fine = ChannelData(np.moveaxis(a, 1, -1)[None], s.coords["x"], s.coords["y"], s.coords["z"], ("u", "v", "w", "p"), dns.dt)
        parts.append(filter_to_les(fine, coarse.nx, coarse.nz, y_coarse, method).fields)
    data = ChannelData(np.concatenate(parts), coarse.x().numpy(), y_coarse, coarse.z().numpy(), ("u", "v", "w", "p"), dns.dt)
    return GridStore(write_channel_store(data, out, "channel_fdns", float(dns.params[0, 0])))


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def evaluate(pred: torch.Tensor, truth: torch.Tensor, y: torch.Tensor, nu: float, checks: list[int]) -> dict[str, Any]:
    """pred, truth (T, 3, Nx, Ny, Nz) velocities of steps 1..T: statistics per quantity over all
    T snapshots, and the velocity error and energy ratio at each of `checks`."""
    e0 = float(truth[0].double().square().mean())
    out: dict[str, Any] = {
        "rel_l2": [float((pred[k - 1] - truth[k - 1]).double().norm() / truth[k - 1].double().norm()) for k in checks],
        "energy_ratio": [float(pred[k - 1].double().square().mean()) / e0 for k in checks],
    }
    try:
        s, r = channel_statistics(pred.double(), y, nu), channel_statistics(truth.double(), y, nu)
        out["statistics"] = {q: relative(getattr(s, q), getattr(r, q)) for q in QUANTITIES}
    except InputError:  # a blown-up or reversed flow has no wall units
        out["statistics"] = {q: math.inf for q in QUANTITIES}
    out["statistics_mean"] = float(np.mean(list(out["statistics"].values())))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dns", type=Path, default=Path("data/channel_dns.h5"))
    ap.add_argument("--dns-grid", type=int, nargs=3, default=(32, 48, 32), metavar=("NX", "NY", "NZ"), help="DNS grid when generating")
    ap.add_argument("--coarse", type=int, nargs=3, default=(16, 24, 16), metavar=("NX", "NY", "NZ"), help="the filtered / LES grid")
    ap.add_argument("--filter", default="spectral", choices=("spectral", "box"), help="filter in x and z")
    ap.add_argument("--re-tau", type=float, default=180.0)
    ap.add_argument("--dt", type=float, default=0.025, help="snapshot interval (h / u_tau) when generating")
    ap.add_argument("--spinup", type=float, default=5.0, help="h / u_tau simulated before the first snapshot when generating")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--max-time", type=float, default=900.0, help="wall-clock cap per network, s")
    ap.add_argument("--lr", type=float, default=5e-4, help="the authors' lr")
    ap.add_argument("--batch", type=int, default=5, help="the authors' batch")
    ap.add_argument("--input-noise", type=float, default=0.0)
    ap.add_argument("--ff-dim", type=int, default=96, help="IFactFormer width (the paper preset: 96)")
    ap.add_argument("--ff-dim-head", type=int, default=96, help="IFactFormer head width (paper: 96)")
    ap.add_argument("--ff-heads", type=int, default=5, help="IFactFormer heads (paper: 5)")
    ap.add_argument("--ff-n-layer", type=int, default=10, help="IFactFormer implicit iterations (paper: 10)")
    ap.add_argument("--fno-width", type=int, default=24)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--name", default="factformer_vs_fno", help="result file name in benchmarks/results (JSON and PNG)")
    args = ap.parse_args()
    console = Console()
    dns = dns_store(args, console)
    lx, lz = (float(dns.schema.coords[a][1] - dns.schema.coords[a][0]) * n for a, n in zip("xz", dns.schema.space_shape[::2]))
    coarse = ChannelGrid(*args.coarse, lx=lx, lz=lz)
    checks = [s for s in (1, 10, 100) if s < args.steps] + [args.steps]
    results: dict[str, Any] = {}
    train_info: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = filtered_store(dns, coarse, args.filter, Path(tmp) / "fdns.h5")
        test = int(store.splits["test"][0])
        truth, start = truth_and_start(store, [test], 1, args.steps, VELOCITY)  # (1, T, 3, *space)
        true_vel = truth[0, 1:]
        y = torch.from_numpy(store.schema.coords["y"]).double()
        nu = 1.0 / float(store.params[test, 0])
        for name, spec in models(args, store.schema.space_shape).items():
            cfg = GridConfig(
                data=DataConfig(str(store.path), VELOCITY, n_input=1, n_target=1, batch_size=args.batch),
                model=spec,
                train=TrainConfig(
                    epochs=args.epochs,
                    lr=args.lr,
                    patience=args.epochs,
                    amp=False,
                    max_time_s=args.max_time,
                    device=args.device,
                    tensorboard=False,
                    input_noise=args.input_noise,
                ),
                eval=EvalConfig(rollout_steps=10, val_rollout_steps=20, val_trajectories=1),
                out_dir=f"{tmp}/{name}",
            )
            console.print(f"[bold]training {name}[/]")
            t0 = time.perf_counter()
            res = run_train(cfg)
            assert res is not None
            model, _ = load_surrogate(res.train.best_checkpoint)
            train_info[name] = {
                "train_s": time.perf_counter() - t0,
                "epochs": res.train.epochs_run,
                "parameters": sum(p.numel() for p in model.parameters()),
                "spec": {"name": spec.name, **spec.params},
            }
            t0 = time.perf_counter()
            with torch.no_grad():
                pred = rollout(SurrogateStepper(model.to("cpu"), store.dt), start, args.steps).fields[0, 1:]
            seconds[name] = (time.perf_counter() - t0) / args.steps
            results[name] = evaluate(pred, true_vel, y, nu, checks)
        persistence = Surrogate(Persistence(out_channels=3), model.normalizer, 1)
        still = rollout(SurrogateStepper(persistence, store.dt), start, args.steps).fields[0, 1:]
        results["persistence"] = evaluate(still, true_vel, y, nu, checks)
        for closure in ("dsm", "wale"):
            solver = ChannelSolver(coarse, dt=store.dt, closure=closure, drive="pressure", device=args.device)
            state = solver.init(start.fields.double().to(args.device), 1.0 / nu)
            t0 = time.perf_counter()
            les = rollout(solver, state, args.steps).fields[0, 1:, :3].float().cpu()
            seconds[f"LES {closure.upper()}"] = (time.perf_counter() - t0) / args.steps
            results[f"LES {closure.upper()}"] = evaluate(les, true_vel, y, nu, checks)
    nx, ny, nz = args.coarse
    table = Table(title=f"Filtered DNS, {nx}x{ny}x{nz}, Re_tau {1 / nu:.0f}: statistics over {args.steps} steps (rel. L2 vs filtered DNS)")
    table.add_column("model")
    for q in (*QUANTITIES, "mean", f"energy @{args.steps}", "s / step"):
        table.add_column(q, justify="right")
    for name, r in results.items():
        stats = [f"{r['statistics'][q]:.3g}" for q in QUANTITIES]
        table.add_row(name, *stats, f"{r['statistics_mean']:.3g}", f"{r['energy_ratio'][-1]:.3g}", f"{seconds.get(name, 0.0):.3g}")
    console.print(table)
    _plot(RESULTS / f"{args.name}.png", results)
    write_result(
        args.name,
        {
            "data": {
                "dns": str(args.dns),
                "dns_grid": list(dns.schema.space_shape),
                "coarse_grid": [nx, ny, nz],
                "filter": args.filter,
                "box": [lx, 2.0, lz],
                "dt": store.dt,
                "re_tau": 1.0 / nu,
                "trajectories": dns.n_trajectories,
                "snapshots": dns.n_steps,
                "split": {k: [int(i) for i in v] for k, v in store.splits.items()},
            },
            "budget": {
                "epochs": args.epochs,
                "max_time_s": args.max_time,
                "lr": args.lr,
                "batch": args.batch,
                "input_noise": args.input_noise,
            },
            "checks": checks,
            "models": train_info,
            "seconds_per_step": seconds,
            "results": results,
        },
    )


def _plot(path: Path, results: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(results)
    x = np.arange(len(QUANTITIES))
    for i, (name, r) in enumerate(results.items()):
        values = [min(r["statistics"][q], 10.0) for q in QUANTITIES]
        ax.bar(x + i * width, values, width, label=name)
    ax.set(xticks=x + 0.4 - width / 2, xticklabels=QUANTITIES, yscale="log", ylabel="rel. L2 vs filtered DNS (capped at 10)")
    ax.set_title("Channel statistics of rollouts against the filtered DNS")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
