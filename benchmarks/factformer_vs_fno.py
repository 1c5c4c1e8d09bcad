"""IFactFormer-m, IFactFormer-o and a 3D FNO on channel LES data, trained with the same budget.

Data: the built-in channel LES (`surrogate generate channel`, DSM), generated once into
`--data` when absent; its last trajectory is the test split and must hold `--steps` + 1
snapshots. Each model is trained by `run_train` with the same epochs, wall-clock cap, lr,
batch and input noise, then rolled out `--steps` steps from the test trajectory's first
snapshot, beside persistence and an LES with the other closure (WALE) on the same grid
from the same state, the "LES baseline" of the anchor. At steps 1, 10, 100, 400:

    rollout error     relative L2 of the velocity against the solver's trajectory (a
                      chaotic flow decorrelates, so late values near sqrt(2) are expected
                      of any model and measure nothing but the statistics);
    statistics error  the mean of the relative L2 differences of U+, u', v', w' rms and
                      -u'v' (wall units) over the snapshots 1..k against the solver's same
                      snapshots;
    energy            kinetic energy / initial at step k (stability).

    python -m benchmarks.factformer_vs_fno --data data/channel_bench.h5 --epochs 10
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import RESULTS, write_result
from surrogate.datasets.store import GridStore
from surrogate.errors import InputError
from surrogate.evaluation.evaluate import truth_and_start
from surrogate.evaluation.long_rollout import profile_differences, velocity_channels
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

CHECK_STEPS = (1, 10, 100, 400)


def models(args: argparse.Namespace, shape: tuple[int, ...]) -> dict[str, ModelSpec]:
    ff = {"n_dims": 3, "dim": args.dim, "heads": 4, "depth": args.depth}
    modes = [max(2, n // 2) for n in shape]
    return {
        "IFactFormer-m": ModelSpec("factformer", {**ff, "variant": "m"}),
        "IFactFormer-o": ModelSpec("factformer", {**ff, "variant": "o"}),
        "FNO3D": ModelSpec("fno", {"n_modes": modes, "hidden_channels": args.fno_width, "n_layers": 4}),
    }


def errors_at(pred: torch.Tensor, truth: torch.Tensor, y: torch.Tensor, nu: float, steps: list[int]) -> dict[str, list[float]]:
    """pred, truth (T, 3, Nx, Ny, Nz) velocities of steps 1..T; errors at each of `steps`."""
    out: dict[str, list[float]] = {"rel_l2": [], "statistics": [], "energy_ratio": []}
    e0 = float(truth[0].square().mean())
    for k in steps:
        p, t = pred[k - 1].double(), truth[k - 1].double()
        out["rel_l2"].append(float((p - t).norm() / t.norm()))
        out["energy_ratio"].append(float(p.square().mean()) / e0)
        try:
            d = profile_differences(channel_statistics(pred[:k].double(), y, nu), channel_statistics(truth[:k].double(), y, nu))
            out["statistics"].append(float(np.mean(list(d.values()))))
        except InputError:  # a blown-up or reversed flow has no wall units
            out["statistics"].append(math.inf)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/channel_bench.h5"))
    ap.add_argument("--grid", type=int, nargs=3, default=(12, 24, 12), metavar=("NX", "NY", "NZ"), help="grid when generating")
    ap.add_argument("--re-tau", type=float, default=180.0)
    ap.add_argument("--dt", type=float, default=0.05, help="data interval (h / u_tau) when generating")
    ap.add_argument("--trajectories", type=int, default=4, help="when generating: 2 train, 1 valid, 1 test")
    ap.add_argument("--drive", default="flow_rate", choices=("flow_rate", "pressure"), help="LES drive when generating")
    ap.add_argument(
        "--conserve",
        nargs="*",
        default=["velocity_x"],
        help="channels whose integral every model step keeps (the flow rate, exact for flow-rate-driven data); none: give the flag alone",
    )
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--max-time", type=float, default=600.0, help="wall-clock cap per model, s")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--n-target", type=int, default=1)
    ap.add_argument("--input-noise", type=float, default=0.1)
    ap.add_argument("--dim", type=int, default=48)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--fno-width", type=int, default=24)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--name", default="factformer_vs_fno", help="result file name in benchmarks/results (JSON and PNG)")
    args = ap.parse_args()
    console = Console()
    if not args.data.exists():
        nx, ny, nz = args.grid
        gen = ChannelGenConfig(
            nx,
            ny,
            nz,
            re_tau=args.re_tau,
            n_trajectories=args.trajectories,
            n_snapshots=args.steps + 1,
            dt=args.dt,
            spinup=5.0,
            drive=args.drive,
            device=args.device,
        )
        t0 = time.perf_counter()
        args.data.parent.mkdir(parents=True, exist_ok=True)
        generate_channel(gen, args.data)
        console.print(f"generated {args.data} in {time.perf_counter() - t0:.0f} s")
    store = GridStore(args.data)
    channels = list(store.channel_names)
    fields = [channels[i] for i in velocity_channels(store, channels)]  # the models advance the velocity; p is diagnostic
    test = int(store.splits["test"][0])
    steps = [s for s in CHECK_STEPS if s <= args.steps]
    truth, vel_state0 = truth_and_start(store, [test], 1, args.steps, fields)  # truth (1, T, 3, *space)
    y = torch.from_numpy(store.schema.coords["y"]).double()
    nu = 1.0 / float(store.params[test, 0])
    true_vel = truth[0, 1:]
    results, train_info = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in models(args, store.schema.space_shape).items():
            cfg = GridConfig(
                data=DataConfig(str(args.data), fields, n_input=1, n_target=args.n_target, batch_size=args.batch, conserve=args.conserve),
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
            pred = rollout(SurrogateStepper(model.to("cpu"), store.dt), vel_state0, args.steps).fields[0, 1:]
            results[name] = errors_at(pred, true_vel, y, nu, steps)
        persistence = Surrogate(Persistence(out_channels=3), model.normalizer, 1)
        results["persistence"] = errors_at(
            rollout(SurrogateStepper(persistence, store.dt), vel_state0, args.steps).fields[0, 1:], true_vel, y, nu, steps
        )
    nx, ny, nz = store.schema.space_shape
    x, z = store.schema.coords["x"], store.schema.coords["z"]
    grid = ChannelGrid(nx, ny, nz, lx=float(x[1] - x[0]) * nx, lz=float(z[1] - z[0]) * nz)
    wale = ChannelSolver(grid, dt=store.dt, closure="wale", drive=args.drive)
    les_state = wale.init(vel_state0.fields.double(), 1.0 / nu)
    t0 = time.perf_counter()
    les = rollout(wale, les_state, args.steps).fields[0, 1:, :3].float()
    les_s = time.perf_counter() - t0
    results["LES WALE"] = errors_at(les, true_vel, y, nu, steps)
    table = Table(title=f"Channel rollouts on {store.path.name} (grid {nx}x{ny}x{nz}, dt {store.dt:g}, {args.steps} steps)")
    table.add_column("model")
    table.add_column("quantity")
    for s in steps:
        table.add_column(f"step {s}", justify="right")
    labels = {"rel_l2": "velocity rel. L2", "statistics": "statistics error", "energy_ratio": "energy / initial"}
    for name, r in results.items():
        for key, label in labels.items():
            table.add_row(name if key == "rel_l2" else "", label, *[f"{v:.3g}" for v in r[key]], end_section=key == "energy_ratio")
    console.print(table)
    _plot(RESULTS / f"{args.name}.png", results, steps)
    write_result(
        args.name,
        {
            "data": {
                "path": str(args.data),
                "grid": [nx, ny, nz],
                "dt": store.dt,
                "re_tau": 1.0 / nu,
                "n_trajectories": store.n_trajectories,
                "snapshots": store.n_steps,
                "closure": "dsm",
                "drive": args.drive,
            },
            "budget": {
                "epochs": args.epochs,
                "max_time_s": args.max_time,
                "lr": args.lr,
                "batch": args.batch,
                "n_target": args.n_target,
                "input_noise": args.input_noise,
                "conserve": args.conserve,
            },
            "steps": steps,
            "models": train_info,
            "les_wale_rollout_s": les_s,
            "results": results,
        },
    )


def _plot(path: Path, results: dict[str, dict[str, list[float]]], steps: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in results.items():
        ax[0].plot(steps, r["rel_l2"], marker="o", label=name)
        ax[1].plot(steps, r["statistics"], marker="o", label=name)
    for a, title in zip(ax, ("velocity rel. L2 vs solver", "statistics error (profiles, rel. L2)")):
        a.set(xscale="log", yscale="log", xlabel="rollout step", title=title)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
