"""The whole GPU story in one prepared call: `make gpu-check` (at most ~8 minutes on one
H100-class GPU). On a machine without CUDA it says so and exits 0.

    1. kernel tests on the device (fp32 and bf16, the dtype tolerance table of tests/kernels)
    2. benchmarks/kernels.py: each Triton kernel against its library peer, its reference and
       torch.compile of the reference
    3. one training step of FNO, IFactFormer-m and the graph transformer under bf16 autocast
    4. the channel surrogate's step against the LES step it replaces, same GPU (target >= 50x)

Each part writes `benchmarks/results/gpu/<part>.json` (device, versions, sizes) as soon as it
ends, so a run cut short keeps what it measured; a part that fails records its error and the
next one runs. Parts start only while the time budget lasts. One table at the end.

    python -m benchmarks.gpu_check [--budget-s 480] [--out benchmarks/results/gpu]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import machine

ROOT = Path(__file__).resolve().parents[1]


def versions() -> dict[str, Any]:
    import triton

    info = machine()
    info["triton"] = triton.__version__
    info["cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability()))
    return info


def kernel_tests(deadline: float, device: torch.device) -> dict[str, Any]:
    """The kernel tests in a child process with the interpreter off (they then run on the device)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    limit = max(30.0, deadline - time.monotonic())
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/kernels", "-q", "-p", "no:cacheprovider", "--no-header"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=limit,
    )
    summary = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-500:]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", summary)}
    sys.path.insert(0, str(ROOT))
    from tests.kernels.conftest import TOLERANCE

    return {
        "exit_code": res.returncode,
        "summary": summary,
        **counts,
        "device": str(device),
        "tolerance_atol_rtol": {str(k).removeprefix("torch."): v for k, v in TOLERANCE.items()},
        "output_tail": res.stdout[-3000:] + res.stderr[-2000:],
    }


def kernels(deadline: float, device: torch.device, out: Path) -> dict[str, Any]:
    from benchmarks.kernels import print_tables, run_all

    def save(partial: dict[str, Any]) -> None:  # after every comparison: a crash later keeps these
        (out / "kernels.json").write_text(json.dumps({"part": "kernels", "partial": True, "results": partial}, indent=2, default=str))

    results = run_all(device, repeats=10, quick=False, deadline=deadline, on_result=save)
    print_tables(results)
    return {"results": results}


def _step_time(step: Callable[[], None], device: torch.device, repeats: int = 10) -> float:
    from benchmarks.kernels import device_time

    return device_time(step, repeats, device, warmup=3)[0]


def train_steps(deadline: float, device: torch.device, small: bool = False) -> dict[str, Any]:
    """Milliseconds per optimizer step (forward, backward, AdamW) under bf16 autocast (`small`:
    toy sizes, to check the script on a CPU)."""
    from torch_geometric.data import Data

    from benchmarks.kernels import lattice_graph
    from surrogate.operators.factformer import FactFormer
    from surrogate.operators.fno import FNO
    from surrogate.operators.graph_transformer import GraphTransformer

    def trainer(model: torch.nn.Module, forward: Callable[[], torch.Tensor]) -> Callable[[], None]:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = forward().float().square().mean()
            loss.backward()
            opt.step()

        return step

    out: dict[str, Any] = {}
    b2, n2, m2, b3, n3, nodes = (2, 16, 4, 1, 8, 400) if small else (32, 128, 32, 8, 48, 100_000)
    fno = FNO(1, 1, 1, (m2, m2), 64, 4).to(device)
    x, p = torch.randn(b2, 1, n2, n2, device=device), torch.randn(b2, 1, device=device)
    cases: dict[str, tuple[dict[str, Any], Callable[[], Callable[[], None]]]] = {
        "FNO 2D": ({"batch": b2, "grid": [n2, n2], "modes": m2, "width": 64, "layers": 4}, lambda: trainer(fno, lambda: fno(x, p))),
    }
    ff = FactFormer(variant="m").to(device)  # the paper preset
    xf = torch.randn(b3, 3, n3, n3, n3, device=device)
    cases["IFactFormer-m"] = (
        {"batch": b3, "grid": [n3, n3, n3], "dim": 96, "dim_head": 96, "heads": 5, "n_layer": 10},
        lambda: trainer(ff, lambda: ff(xf, torch.zeros(b3, 0, device=device))),
    )
    ei, side = lattice_graph(nodes, device)
    pos = torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij"), -1).reshape(-1, 2).float().to(device) / side
    graph = Data(x=torch.randn(side * side, 6, device=device), pos=pos, edge_index=ei)
    gt = GraphTransformer(6, 2, 128, 4, n_blocks=4).to(device)
    cases["graph transformer"] = (
        {"nodes": side * side, "edges": int(ei.shape[1]), "dim": 128, "heads": 4, "blocks": 4},
        lambda: trainer(gt, lambda: gt(graph)),
    )
    for name, (sizes, build) in cases.items():
        if time.monotonic() > deadline:
            out[name] = {**sizes, "skipped": "time budget"}
            continue
        try:
            out[name] = {**sizes, "ms_per_step": _step_time(build(), device)}
        except Exception as e:
            out[name] = {**sizes, "error": f"{type(e).__name__}: {str(e)[:300]}"}
    return out


def channel(deadline: float, device: torch.device) -> dict[str, Any]:
    from benchmarks.channel_rollout import time_channel

    rows = []
    for grid, batch in (((32, 48, 32), 8), ((64, 64, 64), 4)):
        if time.monotonic() > deadline:
            break
        rows.append(time_channel(grid, batch, device, repeats=5, spinup=0.5))
    return {"rows": rows, "target_speedup": 50}


PARTS: dict[str, Callable[..., dict[str, Any]]] = {
    "kernel_tests": kernel_tests,
    "kernels": kernels,
    "train_steps": train_steps,
    "channel": channel,
}
# Each part's share of the budget: a part may not start a new measurement past its own deadline.
SHARES = {"kernel_tests": 0.3, "kernels": 0.4, "train_steps": 0.15, "channel": 0.15}


def summary_rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(what, measured, target) lines for the final table."""
    rows = []
    kt = results.get("kernel_tests", {})
    rows.append(("kernel tests on the device", kt.get("summary", kt.get("error", "not run")), "all pass"))
    for title, recs in results.get("kernels", {}).get("results", {}).items():
        if not isinstance(recs, dict) or "ours (triton)" not in recs:
            continue
        ours = recs["ours (triton)"]
        for label, rec in recs.items():
            if label in ("ours (triton)", "graph") or "ms" not in rec or "ms" not in ours:
                continue
            speed = rec["ms"] / ours["ms"]
            mem = rec["peak_gib"] / ours["peak_gib"] if ours.get("peak_gib") else float("nan")
            target = {
                "neuraloperator SpectralConv": ">= 3x",
                "torch_geometric TransformerConv": ">= 3x, >= 5x less memory",
                "einsum chain": ">= 2x",
            }.get(label, "faster")
            rows.append((f"{title}: ours vs {label}", f"{speed:.2f}x faster, {mem:.2f}x less memory", target))
    for name, rec in results.get("train_steps", {}).items():
        if isinstance(rec, dict) and {"ms_per_step", "error", "skipped"} & set(rec):
            rows.append(
                (
                    f"train step, bf16 autocast: {name}",
                    f"{rec['ms_per_step']:.1f} ms" if "ms_per_step" in rec else str(rec.get("error", rec.get("skipped"))),
                    "-",
                )
            )
    for r in results.get("channel", {}).get("rows", []):
        rows.append(
            (f"channel {'x'.join(map(str, r['grid']))} batch {r['batch']}: LES step / surrogate step", f"{r['speedup']:.1f}x", ">= 50x")
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget-s", type=float, default=480.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu")
    ap.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print(
            "gpu-check: no CUDA device on this machine, nothing to measure. On CPU, `make test` compiles every kernel "
            "configuration the models launch for sm_80 and sm_90 (tests/kernels/test_aot_compile.py)."
        )
        return
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True  # what a user training on a GPU runs; the kernels pick tf32 dots then
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    used = 0.0
    for name in args.parts:
        used += SHARES[name] * args.budget_s
        deadline = start + used
        t0 = time.monotonic()
        print(f"== {name} (until {deadline - start:.0f} s of {args.budget_s:.0f})", flush=True)
        try:
            rec = PARTS[name](deadline, device, args.out) if name == "kernels" else PARTS[name](deadline, device)
        except Exception as e:
            rec = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
            print(rec["traceback"], flush=True)
        rec = {"part": name, "seconds": time.monotonic() - t0, "machine": versions(), **rec}
        results[name] = rec
        (args.out / f"{name}.json").write_text(json.dumps(rec, indent=2, default=str))
        try:
            torch.cuda.empty_cache()
        except Exception as e:  # a sticky device error (illegal address) ends the check; what was measured is saved
            print(f"the device is unusable after {name}: {e}", flush=True)
            break
    table = Table(
        "measurement", "result", "target", title=f"gpu-check on {torch.cuda.get_device_name()} ({time.monotonic() - start:.0f} s)"
    )
    for row in summary_rows(results):
        table.add_row(*row)
    Console(width=200).print(table)
    print(f"wrote {', '.join(str(args.out / f'{n}.json') for n in results)}")


if __name__ == "__main__":
    main()
