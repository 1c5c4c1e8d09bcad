"""The one place a device is chosen: "auto" is CUDA when a GPU is present, else the CPU."""

from __future__ import annotations

import torch

from surrogate.errors import InputError


def resolve_device(name: str | torch.device) -> torch.device:
    """`auto`, `cpu`, `cuda`, `cuda:N` (or a torch.device) -> torch.device; a CUDA device
    asked for on a machine without one is a named error, not a crash at the first tensor."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r}: this machine has no CUDA GPU (use device: auto or cpu)")
    return device
