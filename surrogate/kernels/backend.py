"""Which implementation a kernel-backed module runs: "auto", "triton" or "reference"."""

from __future__ import annotations

import os

import torch

from surrogate.errors import InputError

BACKENDS = ("auto", "triton", "reference")


def resolve_backend(backend: str, tensor: torch.Tensor) -> str:
    """ "triton" or "reference" for `tensor`: auto means Triton on CUDA tensors, the reference
    elsewhere; an explicit "triton" on a CPU tensor needs the interpreter (TRITON_INTERPRET=1)."""
    if backend not in BACKENDS:
        raise InputError(f"kernel backend {backend!r}: expected one of {BACKENDS}")
    if backend == "auto":
        return "triton" if tensor.is_cuda else "reference"
    if backend == "triton" and not tensor.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise InputError(
            "kernel backend 'triton' on a CPU tensor: set TRITON_INTERPRET=1 (the Triton interpreter) or use backend='reference'"
        )
    return backend
