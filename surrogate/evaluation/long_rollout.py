"""Long autoregressive rollouts, beyond the stored trajectories: stability, and for a channel
store the turbulence statistics of the rollout against the solver's.

The stepper advances the first stored state of each trajectory of a split for `n_steps`
(400 for the channel claim), far past where the stored truth ends, so the rollout is judged
by what must hold however long it runs:

    stability   kinetic energy per step, <|u|^2> / 2 over the grid and the trajectories, finite
                and within [1 / bound, bound] times the first (`turbulence.rollout_stability`);
                beside it the turbulent (fluctuation) energy, the velocity minus its mean over
                the periodic axes, relative to the solver's mean turbulent energy: a rollout
                that laminarizes (ratio -> 0) is as wrong as one that blows up;
    statistics  (channel stores: x, z periodic, y walls, a `re_tau` parameter, units of h and
                u_tau) U+(y+), rms of u', v', w', -u'v' and the spectra of the rollout's second
                half against every stored snapshot of the split, with the relative L2
                difference of each profile (only for a stable rollout).

Writes `long_rollout.json`, `energy.png` and, for channels, `turbulence_statistics.png`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from surrogate.datasets.atomic import atomic_path
from surrogate.datasets.store import GridStore
from surrogate.errors import InputError
from surrogate.evaluation.evaluate import truth_and_start
from surrogate.evaluation.turbulence import ChannelStatistics, channel_statistics, plot_statistics, rollout_stability
from surrogate.stepper import AbstractStepper

PROFILES = ("u_plus", "u_rms", "v_rms", "w_rms", "uv")
MAX_KEPT = 100  # rollout snapshots kept per trajectory for the statistics


def velocity_channels(store: GridStore, channels: Sequence[str]) -> list[int]:
    """Indices in `channels` of the velocity components, one per space dimension."""
    names = [f"velocity_{d}" for d in store.schema.spatial_dims]
    missing = [n for n in names if n not in channels]
    if missing:
        raise InputError(
            f"{store.path}: a long rollout's energy needs the velocity channels {names}; {missing} are not among {list(channels)}"
        )
    return [list(channels).index(n) for n in names]


def is_channel(store: GridStore) -> bool:
    """x, z periodic, y walls, and Re_tau known: the layout `convert/generate channel` writes."""
    b = store.schema.boundary
    return (
        store.schema.spatial_dims == ("x", "y", "z")
        and (b.get("x"), b.get("y"), b.get("z")) == ("periodic", "wall", "periodic")
        and "re_tau" in store.schema.param_names
    )


def energies(vel: Tensor, periodic: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Kinetic and turbulent kinetic energy per sample, (B,) each, of velocities (B, d, *space);
    the fluctuation is about the mean over the `periodic` space axes (0-based)."""
    axes = [2 + a for a in periodic] or list(range(2, vel.ndim))
    fluct = vel - vel.mean(dim=axes, keepdim=True)
    return 0.5 * vel.square().sum(1).flatten(1).mean(1), 0.5 * fluct.square().sum(1).flatten(1).mean(1)


def long_rollout_report(
    stepper: AbstractStepper,
    store: GridStore,
    split: str,
    n_steps: int,
    n_input: int,
    channels: Sequence[str],
    out_dir: str | Path,
    bound: float = 10.0,
    name: str = "model",
) -> dict[str, Any]:
    """Roll `stepper` out `n_steps` on every trajectory of `split`; write and return the report."""
    if n_steps < 2:
        raise InputError(f"long rollout: need at least 2 steps, got {n_steps}")
    trajs = np.asarray(store.splits[split])
    if len(trajs) == 0:
        raise InputError(f"{store.path}: split {split!r} has no trajectories for a long rollout")
    vi = velocity_channels(store, channels)
    periodic = [i for i, d in enumerate(store.schema.spatial_dims) if store.schema.boundary.get(d) == "periodic"]
    truth, state = truth_and_start(store, trajs, n_input, store.n_steps - n_input, channels)  # (B, T, C, *space)
    ref_vel = truth[:, :, vi].flatten(0, 1).double()  # (B T, d, *space)
    ref_tke = float(energies(ref_vel, periodic)[1].mean())
    stride = max(1, (n_steps - n_steps // 2) // MAX_KEPT)
    kept, ke, tke = [], [], []
    for i in range(n_steps + 1):
        if i:
            state = stepper.step(state)
        vel = state.fields[:, vi].double()
        e, t = energies(vel, periodic)
        ke.append(float(e.mean()))
        tke.append(float(t.mean()))
        if i > n_steps // 2 and (i - n_steps // 2) % stride == 0:
            kept.append(vel.cpu())
    ke_t, tke_t = torch.tensor(ke), torch.tensor(tke)
    report: dict[str, Any] = {
        "model": name,
        "data": str(store.path),
        "split": split,
        "n_trajectories": int(len(trajs)),
        "steps": n_steps,
        "bound": bound,
        "stability": rollout_stability(ke_t, bound),
        "turbulent_energy_ratio": {
            "first": tke[0] / ref_tke,
            "last": tke[-1] / ref_tke,
            "min": float(tke_t.min()) / ref_tke,
            "max": float(tke_t.max()) / ref_tke,
            "second_half_mean": float(tke_t[n_steps // 2 :].mean()) / ref_tke,
        },
        "kinetic_energy": ke,
        "turbulent_energy": tke,
        "solver_turbulent_energy": ref_tke,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _plot_energy(out / "energy.png", ke_t, tke_t / ref_tke, bound, name)
    if is_channel(store) and bool(report["stability"]["stable"]):  # the statistics of a blown-up rollout mean nothing
        re_tau = store.params[trajs, list(store.schema.param_names).index("re_tau")]
        if np.ptp(re_tau) > 1e-6 * re_tau[0]:
            raise InputError(f"{store.path}: split {split!r} mixes Re_tau {sorted(set(re_tau.tolist()))}; statistics need one")
        y = torch.from_numpy(store.schema.coords["y"]).double()
        nu = 1.0 / float(re_tau[0])
        ref = channel_statistics(ref_vel, y, nu)
        sur = channel_statistics(torch.cat(kept), y, nu)
        report["statistics"] = {"solver": _summary(ref), name: _summary(sur), "relative_l2": profile_differences(sur, ref)}
        plot_statistics({"solver": ref, name: sur}, out / "turbulence_statistics.png")
    with atomic_path(out / "long_rollout.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return report


def _summary(s: ChannelStatistics) -> dict[str, Any]:
    return {"re_tau": s.re_tau, "y_plus": s.y_plus.tolist(), **{p: getattr(s, p).tolist() for p in PROFILES}}


def profile_differences(s: ChannelStatistics, ref: ChannelStatistics) -> dict[str, float]:
    """Relative L2 difference of each profile, ||s - ref|| / ||ref|| over the folded y points."""
    return {p: float(np.linalg.norm(getattr(s, p) - getattr(ref, p)) / np.linalg.norm(getattr(ref, p))) for p in PROFILES}


def _plot_energy(path: Path, ke: Tensor, tke_ratio: Tensor, bound: float, name: str) -> None:
    from matplotlib.figure import Figure  # no pyplot: the caller's plotting state stays as it was

    fig = Figure(figsize=(10, 3.5))
    ax = fig.subplots(1, 2)
    steps = np.arange(len(ke))
    ax[0].plot(steps, (ke / ke[0]).numpy(), label=name)
    for b in (bound, 1 / bound):
        ax[0].axhline(b, color="k", ls=":")
    ax[0].set(yscale="log", xlabel="rollout step", title="kinetic energy / initial (stability bounds dotted)")
    ax[1].plot(steps, tke_ratio.numpy(), label=name)
    ax[1].axhline(1.0, color="k", ls="--", label="solver")
    ax[1].set(xlabel="rollout step", title="turbulent kinetic energy / solver mean")
    for a in ax:
        a.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def long_rollout_table(report: dict[str, Any]) -> Any:
    """Rich table of a long rollout: stability, turbulent energy and, for channels, the statistics."""
    from rich.table import Table

    st, te = report["stability"], report["turbulent_energy_ratio"]
    table = Table(
        "quantity",
        report["model"],
        title=f"long rollout: {report['steps']} steps on {report['n_trajectories']} {report['split']} trajectories",
    )
    table.add_row("stable (energy finite, within bounds)", "yes" if st["stable"] else "NO")
    table.add_row(
        f"kinetic energy / initial, min .. max (bounds 1/{report['bound']:g} .. {report['bound']:g})",
        f"{st['min_energy_ratio']:.3f} .. {st['max_energy_ratio']:.3f}",
    )
    table.add_row("turbulent energy / solver's, second half", f"{te['second_half_mean']:.3f}")
    stats = report.get("statistics")
    if stats:
        table.add_row("Re_tau (solver)", f"{stats[report['model']]['re_tau']:.1f} ({stats['solver']['re_tau']:.1f})")
        for p, v in stats["relative_l2"].items():
            table.add_row(f"{p} profile, rel. L2 vs solver", f"{v:.3f}")
    return table
