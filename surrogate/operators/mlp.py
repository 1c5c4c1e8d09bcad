"""The small MLP that the mesh operators build their encoders, updates and decoders from."""

from __future__ import annotations

from torch import nn


def mlp(sizes: list[int], layer_norm: bool) -> nn.Sequential:
    """Linear-ReLU stack, optionally closed by a LayerNorm (MeshGraphNet's MLPs)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if layer_norm:
        layers.append(nn.LayerNorm(sizes[-1]))
    return nn.Sequential(*layers)
