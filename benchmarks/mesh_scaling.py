"""Memory and step time of one graph-transformer processor block against mesh size.

Synthetic meshes: square lattices of N nodes (10k to 300k) where each node links to its 8
lattice neighbours (both directions), so the attention graph with self-loops has about 9N
edges (2.7M at 300k). One step is the block's forward and backward at dim 128, 4 heads. The
attention is sparse (scatter-softmax on CPU, the Triton kernel on a GPU): time and memory
should grow linearly with E; the table gives both per edge and the fitted exponent of
time ~ E^a. A MeshGraphNet block (latent 128) runs beside it up to --mgn-max-nodes.
Memory is CUDA's allocator peak on a GPU; on CPU the activation bytes autograd saves.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import median, time_interleaved, training_memory_bytes, write_result
from surrogate.kernels.graph_attention import EllGraph
from surrogate.operators.attention_graph import attention_edges
from surrogate.operators.graph_transformer import TransformerBlock, rope_angles
from surrogate.operators.meshgraphnet import GraphNetBlock


def lattice(n_nodes: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """pos (N, 2) and the 8-neighbour edge_index (2, E) of a side x side lattice."""
    side = int(math.isqrt(n_nodes))
    idx = torch.arange(side * side, device=device).view(side, side)
    pairs = []
    for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):  # node (i, j) -> (i + di, j + dj)
        j0, j1 = max(0, -dj), side - max(0, dj)
        a, b = idx[: side - di, j0:j1], idx[di:, j0 + dj : j1 + dj]
        pairs.append(torch.stack([a.flatten(), b.flatten()]))
    und = torch.cat(pairs, 1)
    ys, xs = torch.meshgrid(torch.arange(side, device=device), torch.arange(side, device=device), indexing="ij")
    pos = torch.stack([xs.flatten(), ys.flatten()], 1).float() / side
    return pos, torch.cat([und, und.flip(0)], 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000, 300_000])
    ap.add_argument("--mgn-max-nodes", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    dim = 128
    gt = TransformerBlock(dim, 4).to(device)  # the published block
    mgn = GraphNetBlock(dim).to(device)
    rows = []
    for n in args.sizes:
        pos, ei = lattice(n, device)
        n = pos.shape[0]
        batch = torch.zeros(n, dtype=torch.long, device=device)
        edges = attention_edges(ei, pos, batch, self_loops=False)
        ell = EllGraph.from_edge_index(edges, n)
        angles = rope_angles(pos, dim // 4)
        x = torch.randn(n, dim, device=device, requires_grad=True)
        e = torch.randn(ei.shape[1], dim, device=device, requires_grad=True) if n <= args.mgn_max_nodes else None

        def gt_step() -> None:
            gt(x, ell, edges, angles, batch, None)[0].square().mean().backward()
            if device.type == "cuda":
                torch.cuda.synchronize()

        def mgn_step() -> None:
            h, e2 = mgn(x, e, ei)
            (h.square().mean() + e2.square().mean()).backward()
            if device.type == "cuda":
                torch.cuda.synchronize()

        steps = {"transformer": gt_step} | ({"meshgraphnet": mgn_step} if e is not None else {})
        times = time_interleaved(steps, args.repeats, warmup=1)
        row = {
            "nodes": n,
            "attention_edges": int(edges.shape[1]),
            "mesh_edges": int(ei.shape[1]),
            "transformer_s": median(times["transformer"]),
            "transformer_MB": training_memory_bytes(gt_step, device) / 2**20,
        }
        if e is not None:
            row |= {"meshgraphnet_s": median(times["meshgraphnet"]), "meshgraphnet_MB": training_memory_bytes(mgn_step, device) / 2**20}
        row["transformer_us_per_edge"] = row["transformer_s"] / row["attention_edges"] * 1e6
        row["transformer_bytes_per_edge"] = row["transformer_MB"] * 2**20 / row["attention_edges"]
        rows.append(row)
        Console(width=160).print(row)
        x = e = None  # release the graph's tensors before the next size is built
    e_counts = np.array([r["attention_edges"] for r in rows], float)
    slope_t = float(np.polyfit(np.log(e_counts), np.log([r["transformer_s"] for r in rows]), 1)[0])
    slope_m = float(np.polyfit(np.log(e_counts), np.log([r["transformer_MB"] for r in rows]), 1)[0])
    table = Table(title=f"one processor block (dim {dim}), forward + backward, {device}")
    for col in (
        "nodes",
        "attention edges",
        "transformer s",
        "transformer MB",
        "us/edge",
        "bytes/edge",
        "MeshGraphNet s",
        "MeshGraphNet MB",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            f"{r['nodes']:,}",
            f"{r['attention_edges']:,}",
            f"{r['transformer_s']:.3f}",
            f"{r['transformer_MB']:.0f}",
            f"{r['transformer_us_per_edge']:.3f}",
            f"{r['transformer_bytes_per_edge']:.0f}",
            f"{r.get('meshgraphnet_s', float('nan')):.3f}",
            f"{r.get('meshgraphnet_MB', float('nan')):.0f}",
        )
    console = Console(width=160)
    console.print(table)
    console.print(f"fitted exponents vs E: time {slope_t:.2f}, memory {slope_m:.2f} (1 = linear)")
    path = write_result(
        "mesh_scaling", {"sizes": args.sizes, "dim": dim, "heads": 4, "rows": rows, "exponent_time": slope_t, "exponent_memory": slope_m}
    )
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
