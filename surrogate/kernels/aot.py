"""Ahead-of-time compilation of the Triton kernels for real GPU targets, without a GPU.

Two steps, because a kernel module is either interpreted (`TRITON_INTERPRET=1`: it runs on
CPU) or compiled, never both in one process:

1. `record_launches()` (under the interpreter): while it is open, every launch of the
   project's kernels is recorded, not executed: the argument kinds and dtypes, the integer
   values (Triton specializes on 1 and on divisibility by 16), the pointers' 16-byte
   alignment and the constexprs (block sizes, flags, head sizes). Running a model's forward
   and backward inside it gives exactly the configurations that model launches.
2. `compile_launches(launches, capabilities)` (in a process without the interpreter):
   rebuilds each launch's signature the way Triton's launcher does (`_pack_args` of the
   kernel's own binder), compiles it with `triton.compile` for `GPUTarget("cuda", cc, 32)`
   (the bundled ptxas makes the cubin) and reads the shared memory from the kernel's
   metadata and the registers and spills from the cubin (`cuobjdump`, bundled too).

`python -m surrogate.kernels.aot LAUNCHES.json OUT.json` runs step 2 (the test runs it in a
subprocess with the interpreter switched off).

Shared memory per block on the targets (opt-in maximum): A100 (sm_80) 163 KiB, H100/H200
(sm_90) 227 KiB.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

# Every Triton kernel of the project, as module:attribute.
KERNELS = (
    "surrogate.kernels.cgemm:_cgemm_kernel",
    "surrogate.kernels.graph_attention.kernel:_forward_kernel",
    "surrogate.kernels.graph_attention.kernel:_grad_q_kernel",
    "surrogate.kernels.graph_attention.kernel:_grad_kv_kernel",
)
SHARED_LIMIT = {80: 163 * 1024, 90: 227 * 1024}  # bytes per block
TARGET_NAMES = {80: "sm_80 (A100)", 90: "sm_90 (H100/H200)"}


@dataclass(frozen=True)
class Launch:
    """One kernel configuration: `args` are (name, kind, value) with kind "tensor" (value:
    "dtype/aligned" or "dtype/unaligned"), "int", "float", or "constexpr"."""

    kernel: str
    args: tuple[tuple[str, str, Any], ...]

    def describe(self) -> str:
        consts = [f"{n}={v}" for n, k, v in self.args if k == "constexpr"]
        dtypes = sorted({v.split("/")[0] for _, k, v in self.args if k == "tensor"})
        return f"{self.kernel.split(':')[1]}[{', '.join(consts)}; {'/'.join(dtypes)}]"


@dataclass
class Compiled:
    launch: str
    capability: int
    shared_bytes: int
    registers: int
    spill_bytes: int
    num_warps: int
    num_stages: int

    @property
    def fits(self) -> bool:
        return self.shared_bytes <= SHARED_LIMIT[self.capability]


def _kernel(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _spec(name: str, value: Any, constexprs: set[str]) -> tuple[str, str, Any]:
    if name in constexprs:
        return (name, "constexpr", value)
    if isinstance(value, torch.Tensor):
        aligned = "aligned" if value.data_ptr() % 16 == 0 else "unaligned"
        return (name, "tensor", f"{str(value.dtype).removeprefix('torch.')}/{aligned}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"kernel argument {name}: cannot record a {type(value).__name__}")
    if isinstance(value, float):
        return (name, "float", value)
    # Triton's launcher specializes an int on == 1, on divisibility by 16 and on needing 64 bits:
    # one representative of each class compiles the same code as any other member.
    wide = 2**32 if abs(value) >= 2**31 else 0
    return (name, "int", 1 if value == 1 else wide + (16 if value % 16 == 0 else 17))


@contextmanager
def record_launches() -> Iterator[set[Launch]]:
    """Record (and skip) every launch of the project's kernels while open; interpreter only."""
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("record_launches needs the Triton interpreter (TRITON_INTERPRET=1 before the kernels are imported)")
    launches: set[Launch] = set()
    patched = []
    for path in KERNELS:
        kernel = _kernel(path)
        constexprs = {p.name for p in _constexpr_params(kernel)}

        def run(*args: Any, grid: Any, warmup: bool, _path: str = path, _k: Any = kernel, _c: set[str] = constexprs, **kwargs: Any) -> None:
            bound = dict(zip(_k.arg_names, args)) | kwargs
            launches.add(Launch(_path, tuple(_spec(n, bound[n], _c) for n in _k.arg_names)))

        kernel.run = run  # an instance attribute: the class's run is untouched
        patched.append(kernel)
    try:
        yield launches
    finally:
        for kernel in patched:
            del kernel.run


def _constexpr_params(kernel: Any) -> list[Any]:
    import inspect

    return [p for p in inspect.signature(kernel.fn).parameters.values() if "constexpr" in str(p.annotation)]


def _stand_in(kind: str, value: Any) -> Any:
    if kind != "tensor":
        return value
    dtype, alignment = value.split("/")
    t = torch.empty(8, dtype=getattr(torch, dtype))
    return t if alignment == "aligned" else t[1:]  # one element off: not 16-byte aligned


def compile_launch(launch: Launch, capability: int) -> Compiled:
    """Compile one launch for sm_<capability> the way Triton's launcher would; no GPU needed."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend
    from triton.runtime.jit import create_function_from_signature

    if os.environ.get("TRITON_INTERPRET") == "1":
        raise RuntimeError("compile_launch needs the compiler: run it with TRITON_INTERPRET unset")
    kernel = _kernel(launch.kernel)
    target = GPUTarget("cuda", capability, 32)
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    args = {name: _stand_in(kind, value) for name, kind, value in launch.args}
    consts = {n: args.pop(n) for n, kind, _ in launch.args if kind == "constexpr"}
    bound, specialization, options = binder(*args.values(), **consts)
    options, signature, constexprs, attrs = kernel._pack_args(backend, consts, bound, specialization, options)
    compiled = triton.compile(ASTSource(kernel, signature, constexprs, attrs), target=target, options=options.__dict__)
    registers, spills = _resource_usage(compiled.asm["cubin"])
    return Compiled(
        launch.describe(),
        capability,
        int(compiled.metadata.shared),
        registers,
        spills,
        int(compiled.metadata.num_warps),
        int(compiled.metadata.num_stages),
    )


def _resource_usage(cubin: bytes) -> tuple[int, int]:
    """(registers per thread, spill bytes) of a cubin, read by the bundled cuobjdump."""
    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([str(tool), "--dump-resource-usage", f.name], capture_output=True, text=True, check=True).stdout
    reg = re.search(r"REG:(\d+)", text)
    spill = re.search(r"STACK:(\d+)", text)
    return int(reg.group(1)) if reg else -1, int(spill.group(1)) if spill else 0


def _compile_one(item: tuple[Launch, int]) -> Compiled:
    return compile_launch(*item)


def compile_launches(launches: Sequence[Launch], capabilities: Sequence[int] = (80, 90), workers: int = 2) -> list[Compiled]:
    """Every launch for every target, `workers` compilations at a time."""
    jobs = [(launch, cc) for launch in sorted(launches, key=Launch.describe) for cc in capabilities]
    import multiprocessing

    # spawn, not fork: a forked child of a process that has started torch's threads can deadlock
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_compile_one, jobs))


def save_launches(launches: Sequence[Launch], path: Path) -> None:
    path.write_text(json.dumps([{"kernel": x.kernel, "args": [list(a) for a in x.args]} for x in launches]))


def load_launches(path: Path) -> list[Launch]:
    return [Launch(d["kernel"], tuple((n, k, v) for n, k, v in d["args"])) for d in json.loads(path.read_text())]


def main(argv: list[str]) -> None:
    launches_json, out_json = map(Path, argv)
    results = compile_launches(load_launches(launches_json))
    out_json.write_text(json.dumps([asdict(r) | {"fits": r.fits} for r in results], indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
