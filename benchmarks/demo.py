"""Record what `make demo` printed: the per-step table of runs/ns2d_fno (after `make demo`),
its training history and time, with the machine, into benchmarks/results/demo_ns2d_fno.json,
and the markdown table that README.md and benchmarks/README.md show.

    make demo && .venv/bin/python -m benchmarks.demo [--wall-s SECONDS] [--note TEXT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import write_result

STEPS = (1, 5, 10, 20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", type=Path, default=Path("runs/ns2d_fno"))
    ap.add_argument("--wall-s", type=float, default=None, help="wall time of the whole `make demo`, if measured")
    ap.add_argument("--note", default="", help="the conditions of the run, e.g. 'beside two busy processes'")
    args = ap.parse_args()
    per_step = json.loads((args.run / "report" / "metrics.json").read_text())["per_step"]
    summary = json.loads((args.run / "train_summary.json").read_text())
    history = [json.loads(line) for line in (args.run / "metrics.jsonl").read_text().splitlines()]
    rows = ["| step | persistence rel. L2 | FNO rel. L2 | persistence / FNO |", "| ---: | ---: | ---: | ---: |"]
    for s in STEPS:
        p, f = per_step["persistence"]["rel_l2"][s - 1], per_step["fno"]["rel_l2"][s - 1]
        rows.append(f"| {s} | {p:.4f} | {f:.4f} | {p / f:.1f}x |")
    table = "\n".join(rows)
    print(table)
    print(f"training: {summary['stopped']}, {summary['train_s']:.0f} s; whole demo: {args.wall_s} s")
    write_result(
        "demo_ns2d_fno",
        {
            "benchmark": "make demo (NS2D, FNO vs persistence)",
            "command": "make demo",
            "data": "120 NS2D trajectories, nu=1e-3, 64x64, 40 steps, dt=0.25 from t=0, split 96/12/12",
            "note": args.note,
            "demo_wall_s": args.wall_s,
            "train_s": summary["train_s"],
            "stopped": summary["stopped"],
            "training_history": history,
            "per_step_test": {name: d["rel_l2"] for name, d in per_step.items()},
            "table": table,
        },
    )


if __name__ == "__main__":
    main()
