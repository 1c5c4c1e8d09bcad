"""Report folder of an evaluation: metrics.json, an error-vs-step plot, a summary table."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from surrogate.datasets.atomic import atomic_path

TABLE_STEPS = (1, 2, 5, 10, 20, 50, 100)


def write_report(
    out_dir: str | Path,
    results: Mapping[str, Mapping[str, np.ndarray]],
    meta: Mapping[str, Any],
) -> Path:
    """Write `metrics.json` and `error_vs_step.png` into `out_dir`; returns the folder.

    `results` is {stepper name: {metric: (n_steps,)}}, as `evaluate_rollouts` returns it.
    """
    from matplotlib.figure import Figure  # no pyplot: the caller's plotting state stays as it was

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {**meta, "per_step": {n: {m: v.tolist() for m, v in d.items()} for n, d in results.items()}}
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=2))
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("rel_l2", "rmse")):
        for name, d in results.items():
            steps = np.arange(1, len(d[metric]) + 1)
            ax.plot(steps, d[metric], marker="o", ms=3, label=name)
        ax.set_xlabel("rollout step")
        ax.set_ylabel(metric)
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"Rollout error on {meta.get('split', '')} trajectories of {meta.get('data', '')}")
    fig.tight_layout()
    with atomic_path(out / "error_vs_step.png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return out


def summary_table(results: Mapping[str, Mapping[str, np.ndarray]], metric: str = "rel_l2", steps: Sequence[int] = TABLE_STEPS) -> Table:
    """Rich table: `metric` at selected rollout steps, one column per stepper, and how many
    times lower the last stepper's error is than the first's (the baseline)."""
    names = list(results)
    n = len(next(iter(results.values()))[metric])
    table = Table(title=f"per-step {metric} on held-out trajectories")
    table.add_column("step", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    if len(names) > 1:
        table.add_column(f"{names[0]} / {names[-1]}", justify="right")
    for s in [s for s in steps if s <= n] + ([n] if n not in steps else []):
        vals = [float(results[name][metric][s - 1]) for name in names]
        row = [str(s)] + [f"{v:.4f}" for v in vals]
        if len(names) > 1:
            row.append(f"{vals[0] / vals[-1]:.1f}x" if vals[-1] > 0 else "-")
        table.add_row(*row)
    return table


def write_index(out_dir: str | Path, results: Mapping[str, Mapping[str, np.ndarray]], meta: Mapping[str, Any]) -> Path:
    """`index.html`: the metrics table and every PNG of the report folder."""
    import html

    out = Path(out_dir)
    names = list(results)
    n = len(next(iter(results.values()))["rel_l2"])
    steps = [s for s in TABLE_STEPS if s <= n] + ([n] if n not in TABLE_STEPS else [])
    head = "".join(f"<th>{html.escape(x)}</th>" for x in ["step", *names])
    rows = "".join(
        "<tr>" + f"<td>{s}</td>" + "".join(f"<td>{float(results[k]['rel_l2'][s - 1]):.4f}</td>" for k in names) + "</tr>" for s in steps
    )
    images = "".join(f'<figure><img src="{p.name}"><figcaption>{p.stem}</figcaption></figure>' for p in sorted(out.glob("*.png")))
    pvd = "".join(f"<li><code>{html.escape(str(p.relative_to(out)))}</code></li>" for p in sorted(out.rglob("*.pvd")))
    info = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in meta.items())
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>surrogate report</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:right}"
        "img{max-width:900px}</style></head><body>"
        f"<h1>Rollout report</h1><ul>{info}</ul><h2>Relative L2 error per rollout step</h2>"
        f"<table><tr>{head}</tr>{rows}</table>{images}"
        f"<h2>ParaView series</h2><ul>{pvd or '<li>none</li>'}</ul></body></html>"
    )
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page)
    return out / "index.html"
