"""Every Triton kernel configuration the models launch, compiled ahead of time for sm_80 and
sm_90 on this machine (no GPU): shared memory against the targets' limit, registers, spills.

    python -m benchmarks.aot_kernels            # table + benchmarks/results/aot_kernels.json

The launches are recorded (not executed) under the Triton interpreter while each model of
`CASES` runs a forward and backward pass at the sizes its example config or benchmark uses,
in fp32 and under bf16 autocast; fp32 GEMMs are compiled with both dot precisions a GPU can
pick (ieee, and tf32 when `torch.backends.cuda.matmul.allow_tf32` is set). `make test` runs
the same recording and compilation (tests/kernels/test_aot_compile.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

from surrogate.kernels.aot import SHARED_LIMIT, Launch, record_launches, save_launches

ROOT = Path(__file__).resolve().parents[1]


def _fno(modes: tuple[int, ...], hidden: int, batch: int, space: tuple[int, ...], channels: int = 1) -> Callable[[], torch.Tensor]:
    from surrogate.operators.fno import FNO

    model = FNO(channels, channels, 1, modes, hidden, 4, spectral_backend="triton")
    x, p = torch.randn(batch, channels, *space), torch.randn(batch, 1)
    return lambda: model(x, p)


def _factformer(batch: int, space: tuple[int, ...]) -> Callable[[], torch.Tensor]:
    from surrogate.operators.factformer import FactFormer

    model = FactFormer(variant="o", backend="triton")  # the paper preset; -m runs no kernel
    x = torch.randn(batch, 3, *space)
    return lambda: model(x, torch.zeros(batch, 0))


def _graph_transformer(dim: int, heads: int, nodes: int) -> Callable[[], torch.Tensor]:
    from torch_geometric.data import Data

    from surrogate.operators.graph_transformer import GraphTransformer

    model = GraphTransformer(6, 2, dim, heads, n_blocks=2, backend="triton")
    pos = torch.rand(nodes, 2)
    src = torch.arange(nodes).repeat_interleave(6)
    graph = Data(x=torch.randn(nodes, 6), pos=pos, edge_index=torch.stack([src, torch.randint(0, nodes, (6 * nodes,))]))
    return lambda: model(graph)


def _kernel_benchmark_sizes() -> Callable[[], torch.Tensor]:
    """The kernel benchmark's own sizes (benchmarks/kernels.py): spectral conv and factorized attention."""
    from surrogate.kernels.factorized_attention import axial_apply
    from surrogate.kernels.spectral_conv.kernel import spectral_conv_triton

    x = torch.randn(8, 64, 256, 256, requires_grad=True)
    w = torch.randn(64, 64, 32, 32, dtype=torch.complex64, requires_grad=True)
    v = torch.randn(1, 4, 64, 64, 64, 32, requires_grad=True)
    ks = [torch.randn(1, 4, 64, 64, requires_grad=True) for _ in range(3)]
    return lambda: spectral_conv_triton(x, w).square().mean() + axial_apply(v, ks, backend="triton").square().mean()


# name -> model forward at the sizes its config or benchmark uses
CASES: dict[str, Callable[[], Callable[[], torch.Tensor]]] = {
    "FNO 2D (examples/ns2d_fno.yaml: 64^2, 16 modes, width 24, batch 16)": lambda: _fno((16, 16), 24, 16, (64, 64)),
    "FNO 2D (examples/cfdbench_cavity_fno.yaml: 64^2, 16 modes, width 16, u v)": lambda: _fno((16, 16), 16, 16, (64, 64), 2),
    "FNO 3D (factformer_vs_fno: 12x24x12, half modes, width 24)": lambda: _fno((6, 12, 6), 24, 8, (12, 24, 12), 3),
    "IFactFormer-o (paper preset: 32x33x16, dim 96, 5 heads of 96)": lambda: _factformer(8, (32, 33, 16)),
    "graph transformer (examples/cylinder_mesh.yaml: dim 64, 4 heads)": lambda: _graph_transformer(64, 4, 300),
    "graph transformer (default and mesh_scaling: dim 128, 4 heads x 32)": lambda: _graph_transformer(128, 4, 300),
    "kernel benchmark sizes (spectral 256^2 C64 32 modes; factorized 64^3)": _kernel_benchmark_sizes,
}


def gpu_variants(launch: Launch) -> list[Launch]:
    """The launch as a CUDA device would make it: fp32 GEMMs also with tf32 dots."""
    consts = {n: v for n, k, v in launch.args if k == "constexpr"}
    if consts.get("PRECISION") != "ieee" or any(k == "tensor" and v.startswith("bfloat16") for _, k, v in launch.args):
        return [launch]
    tf32 = tuple((n, k, "tf32" if n == "PRECISION" else v) for n, k, v in launch.args)
    return [launch, Launch(launch.kernel, tf32)]


def record_model_launches(cases: dict[str, Callable[[], Callable[[], torch.Tensor]]] = CASES) -> dict[str, set[Launch]]:
    """Per case, the launches of a forward and backward pass in fp32 and under bf16 autocast."""
    out: dict[str, set[Launch]] = {}
    for name, build in cases.items():
        torch.manual_seed(0)
        forward = build()
        found: set[Launch] = set()
        for autocast in (False, True):
            context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else nullcontext()
            with record_launches() as launches, context:
                forward().float().square().mean().backward()
            found |= {v for launch in launches for v in gpu_variants(launch)}
        out[name] = found
    return out


def compile_all(launches: list[Launch]) -> list[dict]:
    """Compile in a child process with the interpreter off (kernels must be JIT functions there)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "launches.json", Path(tmp) / "compiled.json"
        save_launches(launches, src)
        res = subprocess.run(
            [sys.executable, "-m", "surrogate.kernels.aot", str(src), str(dst)], env=env, cwd=ROOT, capture_output=True, text=True
        )
        if res.returncode != 0:
            raise RuntimeError(f"AOT compilation failed:\n{res.stderr[-4000:]}")
        return json.loads(dst.read_text())


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from benchmarks.common import write_result

    if os.environ.get("TRITON_INTERPRET") != "1":
        # The recording needs the interpreter from before the kernels are imported: rerun so.
        env = {**os.environ, "TRITON_INTERPRET": "1"}
        sys.exit(subprocess.run([sys.executable, "-m", "benchmarks.aot_kernels", *sys.argv[1:]], env=env).returncode)
    per_case = record_model_launches()
    launches = sorted(set().union(*per_case.values()), key=Launch.describe)
    results = compile_all(launches)
    table = Table(title="Triton kernels compiled ahead of time (no GPU): every configuration the models launch")
    for col in ("kernel [constexprs; dtypes]", "target", "shared KiB", "limit KiB", "registers", "spill B", "warps", "stages"):
        table.add_column(col)
    for r in results:
        table.add_row(
            r["launch"],
            f"sm_{r['capability']}",
            f"{r['shared_bytes'] / 1024:.0f}",
            f"{SHARED_LIMIT[r['capability']] / 1024:.0f}",
            str(r["registers"]),
            str(r["spill_bytes"]),
            str(r["num_warps"]),
            str(r["num_stages"]),
        )
    Console(width=200).print(table)
    cases = {name: sorted(x.describe() for x in found) for name, found in per_case.items()}
    path = write_result(
        "aot_kernels", {"configurations": len(launches), "cases": cases, "compiled": results, "all_fit": all(r["fits"] for r in results)}
    )
    print(f"{len(launches)} configurations x 2 targets compiled; all fit: {all(r['fits'] for r in results)}; wrote {path}")


if __name__ == "__main__":
    main()
