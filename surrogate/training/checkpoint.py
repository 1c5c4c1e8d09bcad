"""Checkpoints: plain tensors and containers, written atomically, loaded with weights_only=True."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from surrogate.datasets.atomic import atomic_path
from surrogate.errors import InputError

FORMAT_VERSION = 1
REQUIRED = ("format_version", "model", "state_dict", "normalizer", "data_schema", "step")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write `payload` (plus the format version) to `path` via a temporary file and a rename."""
    with atomic_path(path) as tmp:
        torch.save({"format_version": FORMAT_VERSION, **payload}, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, expect_model: str | None = None) -> dict[str, Any]:
    """Read a checkpoint safely (`weights_only=True`) and check it is one of ours.

    `expect_model` guards against loading a checkpoint of another model.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for foreign or truncated files
        raise InputError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e)[:200]})") from None
    missing = [k for k in REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise InputError(f"{path}: not a surrogate checkpoint, missing keys {missing}")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise InputError(f"{path}: checkpoint format {ckpt['format_version']}, this version reads {FORMAT_VERSION}")
    name = ckpt["model"]["name"]
    if expect_model is not None and name != expect_model:
        raise InputError(f"{path}: checkpoint of model {name!r}, but the config asks for {expect_model!r}")
    return ckpt
