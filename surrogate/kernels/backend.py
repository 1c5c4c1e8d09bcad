"""Which implementation a kernel-backed module runs: "auto", "triton" or "reference".

"auto" runs the reference off CUDA, and on CUDA the implementation measured faster there:
each Triton kernel was timed against `torch.compile` of its reference on an H200 (sm_90) by
`make gpu-check` (benchmarks/results/gpu/kernels.json; tests/kernels/test_backend_choice.py
keeps this table in step with that file). A kernel slower than the compiled reference is
not chosen by "auto"; "triton" still runs it.
"""

from __future__ import annotations

import importlib.util
import os

import torch

from surrogate.errors import InputError

BACKENDS = ("auto", "triton", "reference")
# op -> what "auto" runs on CUDA, from the measured forward+backward times on sm_90:
#   spectral_conv         Triton 2.46 / 6.40 ms vs compiled reference 3.77 / 11.07 ms (B 8 / 32, 256^2, C 64)
#   graph_attention       Triton 2.08 ms vs compiled reference 7.37 ms (300k nodes, 2.7M edges, 4 x 32)
#   factorized_attention  Triton 5.82 / 40.6 ms vs compiled einsum chain 2.71 / 14.9 ms (64^3 / 128^3): reference
AUTO_ON_CUDA = {"spectral_conv": "triton", "graph_attention": "triton", "factorized_attention": "reference"}


def resolve_backend(backend: str, tensor: torch.Tensor, op: str) -> str:
    """ "triton" or "reference" for `op` on `tensor`; an explicit "triton" on a CPU tensor needs
    the interpreter (TRITON_INTERPRET=1)."""
    if backend not in BACKENDS:
        raise InputError(f"kernel backend {backend!r}: expected one of {BACKENDS}")
    have_triton = importlib.util.find_spec("triton") is not None
    if backend == "auto":
        return AUTO_ON_CUDA[op] if tensor.is_cuda and have_triton else "reference"
    if backend == "triton" and not have_triton:
        raise InputError("kernel backend 'triton' needs the triton package: pip install 'surrogate[kernels]'")
    if backend == "triton" and not tensor.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise InputError(
            "kernel backend 'triton' on a CPU tensor: set TRITON_INTERPRET=1 (the Triton interpreter) or use backend='reference'"
        )
    return backend
