"""The small MLP that the mesh operators build their encoders, updates and decoders from."""

from __future__ import annotations

from torch import nn


def mlp(sizes: list[int], layer_norm: bool, norm: type[nn.Module] = nn.LayerNorm, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear-`act` stack, optionally closed by a `norm` (MeshGraphNet's MLPs: ReLU and LayerNorm;
    the graph transformer's as published: RMSNorm)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    if layer_norm:
        layers.append(norm(sizes[-1]))
    return nn.Sequential(*layers)
