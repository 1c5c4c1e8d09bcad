"""enf2enf vs the graph baseline (MeshGraphNet on k-NN graphs) and GINO on steady flows over
varying obstacles, trained with the same budget in one run.

Data: `surrogate generate steady` (random ellipses and NACA airfoils at random angles and
inflow speeds, solved to steady state on a 64 x 32 channel grid): the last 20% of the
samples are held-out geometries. Every model trains on a random quarter of each training
sample's points (the coarse mesh) with the same budget: the same wall-clock time (or
epochs, whichever ends first), batch, queries per sample and learning rate; it is then
evaluated on the held-out geometries
  - at the training resolution and on every point (zero-shot super-resolution),
  - per field relative L2, the surface-pressure relative L2 and the constant-mean baseline,
  - the obstacle's pressure drag and lift coefficients from the predicted surface pressure
    against those from the true one (`surrogate.evaluation.forces`; ellipses and airfoils);
then inference is timed per sample at the full resolution and at 10k and 100k query points
(random points of a held-out sample's fluid domain).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import median, write_result
from surrogate.datasets.geometry import signed_distance
from surrogate.generate.steady import SteadyGenConfig, generate_steady
from surrogate.tasks.base import ModelSpec
from surrogate.tasks.steady import (
    SteadyData,
    SteadyDataConfig,
    SteadyExperimentConfig,
    geometry_set,
    load_steady_surrogate,
    run_steady_train,
)
from surrogate.training.trainer import TrainConfig

MODELS = {
    "enf2enf": {"n_latents": 32, "latent_dim": 64, "k_nearest": 6, "sigma": 0.2, "inner_steps": 2},
    "steady_graph": {"backbone": "meshgraphnet", "width": 64, "depth": 6, "k_neighbors": 8},
    "gino": {"latent_shape": [32, 16], "modes": [12, 8], "hidden": 32, "n_layers": 4, "radius": 0.06},
}


def fluid_queries(sample, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n random points (n, 2) of the sample's fluid domain and their SDF."""
    rng = np.random.default_rng(seed)
    lo, hi = sample.points.min(0), sample.points.max(0)
    out = np.zeros((0, 2))
    while len(out) < n:
        q = rng.uniform(lo, hi, size=(2 * n, 2))
        out = np.concatenate([out, q[signed_distance(q, sample.rings, sample.walls) > 0]])
    q = out[:n]
    return q, signed_distance(q, sample.rings, sample.walls)


@torch.no_grad()
def inference_seconds(model, sample, n: int, repeats: int) -> float:
    q, q_sdf = fluid_queries(sample, n, 0)
    gp, gs = geometry_set(sample, np.arange(len(sample.points)), 256, 0)
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)[None]  # noqa: E731
    args = (f(gp), f(gs), f(sample.params), f(q), f(q_sdf))
    model(*args)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(*args)
        times.append(time.perf_counter() - t0)
    return median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=None, help="A steady store; generated (48 samples) when omitted.")
    ap.add_argument("--epochs", type=int, default=500, help="At most this many epochs ...")
    ap.add_argument("--max-time", type=float, default=300.0, help="... and at most this many seconds of training per model.")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--enf2enf-params", type=json.loads, default={}, help="JSON merged into enf2enf's params, e.g. '{\"sdf_weight\": 0}'")
    ap.add_argument("--tag", default="", help="results go to enf2enf_TAG.json (an ablation beside the main run)")
    args = ap.parse_args()
    MODELS["enf2enf"] = {**MODELS["enf2enf"], **args.enf2enf_params}
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="enf2enf-bench-"))
    data_path = args.data
    if data_path is None:
        data_path = generate_steady(SteadyGenConfig(n_samples=48, nx=64, ny=32), work / "steady.h5")
    data_cfg = SteadyDataConfig(
        path=str(data_path), batch_size=4, n_queries=512, n_geometry_points=256, train_points=0.25, test_fraction=0.2
    )
    train_cfg = TrainConfig(
        epochs=args.epochs, lr=2e-3, patience=1000, amp=False, tensorboard=False, max_time_s=args.max_time, scheduler="constant"
    )
    data = SteadyData(data_cfg)
    test_sample = data.samples[data.test_ids[0]]
    results = {}
    for name in args.models.split(","):
        console.print(f"training {name} ...")
        cfg = SteadyExperimentConfig(data=data_cfg, model=ModelSpec(name, MODELS[name]), train=train_cfg, out_dir=str(work / name))
        m = run_steady_train(cfg, progress=False).metrics
        model = load_steady_surrogate(work / name / "best.pt")
        m["inference_s"] = {str(n): inference_seconds(model, test_sample, n, args.repeats) for n in (10_000, 100_000)}
        results[name] = m
    table = Table(
        "model",
        "params",
        "epochs",
        "train (s)",
        "u",
        "v",
        "p",
        "mean (all points)",
        "mean (train res.)",
        "surface p",
        "C_D err",
        "C_L err",
        "ms/sample",
        "10k pts (s)",
        "100k pts (s)",
        title=f"held-out relative L2 ({len(data.test_ids)} geometries)",
    )
    for name, m in results.items():
        r = m["relative_l2"]
        table.add_row(
            name,
            str(m["parameters"]),
            str(m["epochs"]),
            f"{m['train_s']:.0f}",
            *(f"{r[k]:.3f}" for k in ("u", "v", "p")),
            f"{m['relative_l2_mean']:.3f}",
            f"{m['relative_l2_train_resolution_mean']:.3f}",
            f"{m['surface_pressure_relative_l2']:.3f}",
            f"{m['drag_coefficient_abs_error']:.3f} ({m['drag_coefficient_relative_error']:.0%})",
            f"{m['lift_coefficient_abs_error']:.3f} ({m['lift_coefficient_relative_error']:.0%})",
            f"{m['inference_s_per_sample'] * 1e3:.1f}",
            f"{m['inference_s']['10000']:.3f}",
            f"{m['inference_s']['100000']:.3f}",
        )
    first = next(iter(results.values()))
    c = first["constant_mean_relative_l2"]
    table.add_row(
        "constant mean",
        "0",
        "",
        "0",
        *(f"{c[k]:.3f}" for k in ("u", "v", "p")),
        f"{first['constant_mean_relative_l2_mean']:.3f}",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    )
    console.print(table)
    sizes = {
        "samples": len(data.samples),
        "train_samples": len(data.train_ids),
        "test_samples": len(data.test_ids),
        "points_per_sample": float(np.mean([len(s.points) for s in data.samples])),
        "grid": "64x32",
        "train_points_fraction": data_cfg.train_points,
        "epochs": args.epochs,
        "batch_size": data_cfg.batch_size,
        "queries_per_sample": data_cfg.n_queries,
        "max_train_s": args.max_time,
    }
    ratios = {
        f"{name}_vs_enf2enf_error": m["relative_l2_mean"] / results["enf2enf"]["relative_l2_mean"]
        for name, m in results.items()
        if "enf2enf" in results
    }
    path = write_result(
        f"enf2enf_{args.tag}" if args.tag else "enf2enf", {"sizes": sizes, "models": MODELS, "results": results, "ratios": ratios}
    )
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
