"""The Triton kernels against their references, the library peers and `torch.compile`, on a GPU.

    spectral conv       forward+backward, B = 8 and 32, C = 64, 256^2, 32 modes per axis:
                        ours vs neuraloperator's SpectralConv, the torch FFT reference and
                        torch.compile of it (target: >= 3x over neuraloperator)
    graph attention     forward+backward on a mesh-like graph (a lattice, 8 neighbours and
                        itself: 300k nodes, 2.7M edges), 4 heads x 32: ours vs torch_geometric's
                        TransformerConv (its three small linear maps included), the scatter-
                        softmax reference and torch.compile of it, and FlexAttention with a
                        block mask of the same graph; then the largest lattice that fits, ours
                        alone (target: >= 3x faster, >= 5x less memory than TransformerConv)
    factorized attn     forward+backward of the per-axis kernel application at 64^3 and 128^3,
                        B*H = 4, C = 32: ours vs the einsum chain and torch.compile of it
                        (target: >= 2x)

Each row: median milliseconds, peak memory, and achieved GB/s against the memory floor (the
bytes every implementation must read and write once) over the device's bandwidth.
Without a GPU the script says so and exits (`--device cpu --quick` runs the code paths at
toy sizes, under TRITON_INTERPRET=1, to check the script itself; its timings mean nothing).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import median, write_result

Rows = dict[str, dict[str, float]]


def device_time(fn: Callable[[], None], repeats: int, device: torch.device, warmup: int = 2) -> tuple[float, float]:
    """Median milliseconds per call and peak memory (GiB; 0 on CPU) of fn."""
    cuda = device.type == "cuda"
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return median(times), (torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0)


def fwd_bwd(fn: Callable[[], torch.Tensor], inputs: list[torch.Tensor]) -> Callable[[], None]:
    def run() -> None:
        for t in inputs:
            t.grad = None
        fn().float().square().mean().backward()

    return run


def measure(fns: dict[str, Callable[[], None]], floor_bytes: float, repeats: int, peer: str, device: torch.device) -> Rows:
    """Time every implementation; one that fails (out of memory, no compiler) gets its error instead."""
    bandwidth = {"H100": 3.35e12, "H200": 4.8e12, "A100": 2.0e12}
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    peak = next((bw for key, bw in bandwidth.items() if key in name), float("nan"))
    rows: Rows = {}
    for label, fn in fns.items():
        try:
            ms, gib = device_time(fn, repeats, device)
        except Exception as e:  # out of memory, or a peer that does not compile here: report, go on
            rows[label] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}  # type: ignore[dict-item]
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        rows[label] = {
            "ms": ms,
            "peak_gib": gib,
            "achieved_gbps": floor_bytes / (ms * 1e-3) / 1e9,
            "fraction_of_bandwidth": floor_bytes / (ms * 1e-3) / peak,
        }
    if peer in rows and "ms" in rows[peer]:
        for rec in rows.values():
            if "ms" in rec:
                rec["speedup_vs_peer"] = rows[peer]["ms"] / rec["ms"]
                if rec["peak_gib"] > 0:
                    rec["memory_ratio_peer_over_this"] = rows[peer]["peak_gib"] / rec["peak_gib"]
    return rows


def spectral(batch: int, n: int, repeats: int, device: torch.device, c: int = 64, m: int = 32) -> Rows:
    from surrogate.kernels.spectral_conv import SpectralConv, spectral_conv_reference
    from surrogate.kernels.spectral_conv.kernel import spectral_conv_triton

    layer = SpectralConv(c, c, (m, m), bias=False).to(device)
    layer.backend = "reference"  # neuraloperator's own forward
    x = torch.randn(batch, c, n, n, device=device, requires_grad=True)
    w = layer.weight.to_tensor().detach().clone().requires_grad_(True)
    compiled = torch.compile(spectral_conv_reference)
    floor = 4 * (2 * x.numel() * 2)  # read x, write y; backward: read dy, write dx (fp32)
    fns = {
        "ours (triton)": fwd_bwd(lambda: spectral_conv_triton(x, w), [x, w]),
        "neuraloperator SpectralConv": fwd_bwd(lambda: layer(x), [x, *layer.parameters()]),
        "torch FFT reference": fwd_bwd(lambda: spectral_conv_reference(x, w), [x, w]),
        "torch.compile(FFT reference)": fwd_bwd(lambda: compiled(x, w), [x, w]),
    }
    return measure(fns, floor, repeats, "neuraloperator SpectralConv", device)


def lattice_graph(n_nodes: int, device: torch.device) -> tuple[torch.Tensor, int]:
    """edge_index (2, E) of a side x side lattice: each node attends to its 8 neighbours and itself."""
    side = math.isqrt(n_nodes)
    i, j = torch.meshgrid(torch.arange(side, device=device), torch.arange(side, device=device), indexing="ij")
    edges = []
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            ok = (i + di >= 0) & (i + di < side) & (j + dj >= 0) & (j + dj < side)
            edges.append(torch.stack([((i + di) * side + j + dj)[ok], (i * side + j)[ok]]))
    return torch.cat(edges, 1), side


def graph(n: int, repeats: int, device: torch.device, peers: bool, h: int = 4, d: int = 32) -> Rows:
    from surrogate.kernels.graph_attention import EllGraph, graph_attention
    from surrogate.kernels.graph_attention.reference import graph_attention_reference

    ei, side = lattice_graph(n, device)
    n = side * side
    g = EllGraph.from_edge_index(ei, n)
    q, k, v = (torch.randn(n, h, d, device=device, requires_grad=True) for _ in range(3))
    scale = 1 / math.sqrt(d)
    floor = 4 * (3 * n * h * d * 2 + ei.shape[1] + n * h * d * 2)  # q, k, v and grads, neighbour ids, out and its grad
    fns = {"ours (triton)": fwd_bwd(lambda: graph_attention(q, k, v, g, backend="triton"), [q, k, v])}
    if peers:
        compiled = torch.compile(graph_attention_reference)
        fns["scatter-softmax reference"] = fwd_bwd(lambda: graph_attention_reference(q, k, v, ei, scale)[0], [q, k, v])
        fns["torch.compile(scatter-softmax reference)"] = fwd_bwd(lambda: compiled(q, k, v, ei, scale)[0], [q, k, v])
        fns["FlexAttention (block mask of the graph)"] = flex_attention_step(q, k, v, side, scale)
        try:
            from torch_geometric.nn import TransformerConv

            conv = TransformerConv(h * d, d, heads=h, root_weight=False).to(device)
            xin = torch.randn(n, h * d, device=device, requires_grad=True)
            fns["torch_geometric TransformerConv"] = fwd_bwd(lambda: conv(xin, ei), [xin, *conv.parameters()])
        except ImportError:
            print("torch_geometric not installed: TransformerConv row skipped (pip install -e '.[mesh]')")
    peer = "torch_geometric TransformerConv" if "torch_geometric TransformerConv" in fns else "ours (triton)"
    rows = measure(fns, floor, repeats, peer, device)
    rows["graph"] = {"nodes": float(n), "edges": float(ei.shape[1]), "heads": float(h), "head_dim": float(d)}
    return rows


def flex_attention_step(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, side: int, scale: float) -> Callable[[], None]:
    """FlexAttention over the lattice: a node attends to the nodes within one row and column.
    The block mask is built at the first call (inside the timing's error handling)."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    n = q.shape[0]
    built: dict[str, object] = {}

    def neighbours(b: torch.Tensor, hh: torch.Tensor, qi: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return ((qi // side - kv // side).abs() <= 1) & ((qi % side - kv % side).abs() <= 1)

    def run() -> torch.Tensor:
        if not built:  # compiled mask construction: the eager one would materialize N x N
            built["mask"] = create_block_mask(neighbours, None, None, n, n, device=str(q.device), _compile=True)
            built["attend"] = torch.compile(flex_attention)
        qh, kh, vh = (t.transpose(0, 1)[None] for t in (q, k, v))  # (1, H, N, D)
        return built["attend"](qh, kh, vh, block_mask=built["mask"], scale=scale)  # type: ignore[operator]

    return fwd_bwd(run, [q, k, v])


def largest_graph(repeats: int, device: torch.device, start: int, deadline: float) -> list[dict[str, float]]:
    """Ours alone on lattices of 4x more nodes each time, until one does not fit (or time runs out)."""
    out = []
    n = start
    while time.monotonic() < deadline:
        rows = graph(n, repeats, device, peers=False)
        ours = rows["ours (triton)"]
        out.append({**rows["graph"], **{k: v for k, v in ours.items() if isinstance(v, float)}, "fits": float("ms" in ours)})
        if "ms" not in ours:
            break
        n *= 4
    return out


def factorized(n: int, repeats: int, device: torch.device) -> Rows:
    from surrogate.kernels.factorized_attention import axial_apply, axial_apply_reference

    v = torch.randn(1, 4, n, n, n, 32, device=device, requires_grad=True)
    ks = [(torch.randn(1, 4, n, n, device=device) / n).requires_grad_(True) for _ in range(3)]
    compiled = torch.compile(axial_apply_reference)
    floor = 4 * v.numel() * 4  # read v, write out; backward read dout, write dv
    fns = {
        "ours (triton)": fwd_bwd(lambda: axial_apply(v, ks, backend="triton"), [v, *ks]),
        "einsum chain": fwd_bwd(lambda: axial_apply_reference(v, ks), [v, *ks]),
        "torch.compile(einsum chain)": fwd_bwd(lambda: compiled(v, ks), [v, *ks]),
    }
    return measure(fns, floor, repeats, "einsum chain", device)


def run_all(
    device: torch.device, repeats: int, quick: bool, deadline: float, on_result: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Rows | list[dict[str, float]]]:
    """Every comparison of the module docstring (toy sizes with `quick`); stops starting new ones
    at `deadline`. A comparison that fails records its error; `on_result(results so far)` after each."""
    results: dict[str, Rows | list[dict[str, float]]] = {}
    jobs: list[tuple[str, Callable[[], Rows | list[dict[str, float]]]]] = []
    for b in (8, 32):
        bb, n = (2, 32) if quick else (b, 256)
        jobs.append(
            (
                f"spectral_conv B={bb} C=64 {n}^2 modes={n // 8}",
                lambda bb=bb, n=n: spectral(bb, n, repeats, device, 16 if quick else 64, n // 8),
            )
        )
    n_graph = 900 if quick else 300_000
    jobs.append((f"graph_attention {n_graph} nodes (lattice)", lambda: graph(n_graph, repeats, device, peers=True)))
    for n in (8, 12) if quick else (64, 128):
        jobs.append((f"factorized_attention {n}^3", lambda n=n: factorized(n, repeats, device)))
    start = 3_600 if quick else 1_000_000
    jobs.append(("graph_attention largest lattice", lambda: largest_graph(max(3, repeats // 4), device, start, deadline)))
    for title, job in jobs:
        if time.monotonic() > deadline:
            results[title] = {"skipped": {"reason_time_budget": 1.0}}
            continue
        try:
            results[title] = job()
        except Exception as e:  # e.g. a device error: keep what was measured, say what failed
            results[title] = {"failed": {"error": f"{type(e).__name__}: {str(e)[:300]}"}}  # type: ignore[dict-item]
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if on_result is not None:
            on_result(results)
    return results


def print_tables(results: dict[str, Rows | list[dict[str, float]]]) -> None:
    console = Console(width=160)
    for title, rows in results.items():
        if isinstance(rows, list):
            table = Table("nodes", "edges", "ms (fwd+bwd)", "peak GiB", title=title)
            for r in rows:
                table.add_row(
                    f"{r['nodes']:,.0f}", f"{r['edges']:,.0f}", f"{r.get('ms', float('nan')):.1f}", f"{r.get('peak_gib', float('nan')):.1f}"
                )
            console.print(table)
            continue
        table = Table(title=title)
        for col in ("implementation", "ms (fwd+bwd)", "peak GiB", "GB/s (floor bytes)", "speed-up vs peer", "peer memory / this"):
            table.add_column(col, justify="right")
        for label, rec in rows.items():
            if label == "graph" or "ms" not in rec:
                if label != "graph":
                    table.add_row(label, str(rec.get("error", "skipped")), "", "", "", "")
                continue
            table.add_row(
                label,
                f"{rec['ms']:.2f}",
                f"{rec['peak_gib']:.2f}",
                f"{rec['achieved_gbps']:.0f}",
                f"{rec.get('speedup_vs_peer', float('nan')):.2f}x",
                f"{rec.get('memory_ratio_peer_over_this', float('nan')):.2f}x",
            )
        console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="toy sizes (a check of the script, not a measurement)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--budget-s", type=float, default=600.0, help="start no new comparison after this many seconds")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "benchmarks/kernels.py: no CUDA GPU on this machine; skipped. The kernels are tested on CPU under "
            "TRITON_INTERPRET=1 (tests/kernels); GPU timings must be measured on a GPU."
        )
        sys.exit(0)
    results = run_all(device, args.repeats, args.quick, time.monotonic() + args.budget_s)
    print_tables(results)
    if not args.quick:
        print(f"wrote {write_result('kernels', {'results': results})}")


if __name__ == "__main__":
    main()
