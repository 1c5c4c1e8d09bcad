"""Samples/s of the store's windowed reader against a plain h5py read of the same bytes.

Both read the same windows (trajectory, first step, k + m steps) in the same shuffled
order from the same file; ours also returns tensors, parameters and the mask.
Target: ours / plain h5py >= 0.8.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.common import write_result
from surrogate.datasets.store import GridSchema, GridStore, GridStoreWriter
from surrogate.datasets.windows import WindowDataset


def make_store(path: Path, n: int, t: int, res: int) -> None:
    rng = np.random.default_rng(0)
    schema = GridSchema(
        "bench",
        np.arange(t) * 0.1,
        {"x": np.arange(res) / res, "y": np.arange(res) / res},
        scalar_fields=("vorticity",),
        param_names=("viscosity",),
    )
    with GridStoreWriter(path, schema, n) as w:
        for i in range(n):
            w.write(i, {"vorticity": rng.standard_normal((1, t, res, res), dtype=np.float32)}, np.array([[1e-3]]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trajectories", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--n-input", type=int, default=1)
    ap.add_argument("--n-target", type=int, default=1)
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        make_store(path, args.trajectories, args.steps, args.resolution)
        store = GridStore(path)
        ours = WindowDataset(store, "train", args.n_input, args.n_target)
        order = np.random.default_rng(1).permutation(len(ours))[: args.samples]
        w = args.n_input + args.n_target
        pairs = [(int(store.splits["train"][i // ours.per_traj]), int(i % ours.per_traj)) for i in order]
        f = h5py.File(path, "r")
        ds = f["t0_fields/vorticity"]
        rates: dict[str, list[float]] = {"surrogate WindowDataset": [], "plain h5py": []}
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for i in order:
                ours[int(i)]
            rates["surrogate WindowDataset"].append(len(order) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for traj, t in pairs:
                ds[traj, t : t + w]
            rates["plain h5py"].append(len(order) / (time.perf_counter() - t0))
        f.close()
    best = {k: max(v) for k, v in rates.items()}
    ratio = best["surrogate WindowDataset"] / best["plain h5py"]
    table = Table(title=f"window reads, {args.resolution}^2, {w} steps per window")
    table.add_column("reader")
    table.add_column("samples/s (best of rounds)", justify="right")
    for k, v in best.items():
        table.add_row(k, f"{v:,.0f}")
    table.caption = f"ratio ours / plain = {ratio:.3f} (target >= 0.8)"
    Console().print(table)
    out = write_result(
        "loader",
        {
            "sizes": vars(args),
            "samples_per_s": best,
            "all_rates": rates,
            "ratio_ours_over_plain": ratio,
            "target": ">= 0.8",
            "met": ratio >= 0.8,
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
