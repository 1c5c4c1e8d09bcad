"""A report folder: `metrics.json`, figures, and `index.html`, which opens with what was run
(data, split, model and size, stop reason, training time, device, checkpoint, config) and
shows the tables and every figure with its caption. One writer for every task."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.table import Table

from surrogate.datasets.atomic import atomic_path
from surrogate.evaluation.plots import METRIC_LABELS, error_vs_time

TABLE_STEPS = (1, 2, 5, 10, 20, 50, 100)


@dataclass
class HtmlTable:
    caption: str
    header: list[str]
    rows: list[list[str]]


def table_steps(n: int) -> list[int]:
    """The rollout steps a table shows: TABLE_STEPS up to n, and n."""
    return [s for s in TABLE_STEPS if s <= n] + ([n] if n not in TABLE_STEPS else [])


def write_report(
    out_dir: str | Path, results: Mapping[str, Mapping[str, np.ndarray]], meta: Mapping[str, Any], times: np.ndarray, time_label: str
) -> Path:
    """`metrics.json` and `error_vs_time.png` of grid rollouts into `out_dir`; returns the folder.

    `results` is {stepper name: {metric: (n_steps,)}}, as `evaluate_rollouts` returns it;
    `times` (n_steps,) the physical time of each rollout step.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {**meta, "time": np.asarray(times).tolist(), "per_step": {n: {m: v.tolist() for m, v in d.items()} for n, d in results.items()}}
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=2))
    title = f"Rollout error on the {meta.get('split', '')} trajectories of {Path(str(meta.get('data', ''))).name}"
    error_vs_time(out / "error_vs_time.png", results, np.asarray(times), time_label, title, int(meta.get("n_trajectories", 0)))
    return out


def summary_table(results: Mapping[str, Mapping[str, np.ndarray]], metric: str = "rel_l2", steps: Sequence[int] = TABLE_STEPS) -> Table:
    """Rich table: `metric` at selected rollout steps, one column per stepper, and how many
    times lower the last stepper's error is than the first's (the baseline)."""
    names = list(results)
    n = len(next(iter(results.values()))[metric])
    table = Table(title=f"{METRIC_LABELS.get(metric, metric)} per rollout step (mean over held-out trajectories)")
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


def rollout_html_table(results: Mapping[str, Mapping[str, np.ndarray]], times: np.ndarray, metric: str = "rel_l2") -> HtmlTable:
    """Mean and median of `metric` per step and time, one column pair per stepper."""
    names = list(results)
    n = len(times)
    header = ["step", "time"] + [f"{name} {kind}" for name in names for kind in ("mean", "median")]
    rows = [
        [str(s), f"{float(times[s - 1]):.4g}"]
        + [f"{float(results[k][m][s - 1]):.4f}" for k in names for m in (metric, f"{metric}_median") if m in results[k]]
        for s in table_steps(n)
    ]
    return HtmlTable(f"{METRIC_LABELS.get(metric, metric)} per rollout step", header, rows)


def _table_html(t: HtmlTable) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    return f"<h2>{html.escape(t.caption)}</h2><table><tr>{head}</tr>{body}</table>"


def write_index(
    out_dir: str | Path,
    title: str,
    run: Mapping[str, str],
    tables: Sequence[HtmlTable] = (),
    captions: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
) -> Path:
    """`index.html`: what was run (`run`: label -> value), `notes` (warnings a reader must see),
    the tables, every PNG of the folder under its caption (`captions`: file name -> text, in
    that order, then the others), the ParaView and netCDF files, and the config."""
    out = Path(out_dir)
    captions = dict(captions or {})
    pngs = [out / n for n in captions if (out / n).is_file()] + sorted(p for p in out.glob("*.png") if p.name not in captions)
    run_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in run.items())
    note_html = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    images = "".join(
        f"<figure><img src='{p.name}' alt='{html.escape(p.stem)}'>"
        f"<figcaption>{html.escape(captions.get(p.name, p.stem))}</figcaption></figure>"
        for p in pngs
    )
    files = sorted(out.rglob("*.pvd")) + sorted(out.glob("*.xdmf")) + sorted(out.glob("*.nc"))
    file_html = "".join(f"<li><code>{html.escape(str(p.relative_to(out)))}</code></li>" for p in files)
    config_html = (
        f"<details><summary>config</summary><pre>{html.escape(yaml.safe_dump(dict(config), sort_keys=False))}</pre></details>"
        if config
        else ""
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:0.5em 0}"
        "td,th{padding:3px 10px;border-bottom:1px solid #ddd}td{text-align:right}table.run td{text-align:left}"
        "table.run th{text-align:left;font-weight:normal;color:#555}img{max-width:100%}figure{margin:1.5em 0}"
        "figcaption{color:#444}.note{background:#fff3cd;padding:6px 10px}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table class='run'>{run_rows}</table>{note_html}"
        + "".join(_table_html(t) for t in tables)
        + f"{images}<h2>Files for ParaView and xarray</h2><ul>{file_html or '<li>none</li>'}</ul>{config_html}</body></html>"
    )
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page)
    return out / "index.html"
