"""Hard conservation of domain integrals on a grid: a surrogate step that cannot change them.

A channel c is conserved when its integral over the domain, sum_i w_i c_i with cell volumes
w, is the same before and after each step, as the bulk velocity (flow rate) of a channel
driven at constant flow rate, or the total of a scalar in a closed periodic box. The
surrogate's increment d of such a channel is replaced by its projection onto zero integral,

    d <- d - w (w . d) / (w . w),

the smallest change (in the L2 norm) that makes it exact (ProbConserv's hard projection);
solid cells (mask 0) carry no weight and get no correction. In normalized units the same holds, since the normalization
is affine per channel.

Shapes: delta (B, C, *space); weights (*space); mask (B, 1, *space) or None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from surrogate.operators.constraints.probconserv import hard_projection


def cell_widths(coord: np.ndarray, periodic: bool) -> np.ndarray:
    """Width of the cell around each point of a 1D grid: the spacing on a periodic axis, the
    distance between the midpoints to the neighbours otherwise (end cells mirrored)."""
    x = np.asarray(coord, dtype=np.float64)
    if len(x) < 2:
        return np.ones_like(x)
    if periodic:
        return np.full_like(x, (x[-1] - x[0]) / (len(x) - 1))
    mid = 0.5 * (x[1:] + x[:-1])
    edges = np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
    return np.diff(edges)


def cell_volumes(coords: Mapping[str, np.ndarray], boundary: Mapping[str, str]) -> list[list[float]]:
    """Per-axis cell widths of a grid store's coordinates (their outer product is the volume)."""
    return [cell_widths(c, boundary.get(d) == "periodic").tolist() for d, c in coords.items()]


def volume_grid(widths: Sequence[Sequence[float]]) -> Tensor:
    """The (*space) cell volumes from per-axis widths."""
    out = torch.ones(())
    for w in widths:
        out = out[..., None] * torch.as_tensor(w, dtype=torch.float32)
    return out


def conserve_integrals(delta: Tensor, weights: Tensor, channels: Sequence[int], mask: Tensor | None = None) -> Tensor:
    """`delta` with the weighted integral of each of `channels` projected to zero
    (`probconserv.hard_projection` with G the masked cell volumes, b = 0)."""
    w = weights.to(delta.dtype).expand(delta.shape[0], *weights.shape)  # (B, *space)
    if mask is not None:
        w = w * mask[:, 0]
    g = w.flatten(1)[:, None, :]  # (B, 1, N): one integral per sample
    zero = delta.new_zeros(delta.shape[0], 1)
    out = delta.clone()
    for c in channels:
        out[:, c] = hard_projection(delta[:, c].flatten(1), g, zero).view_as(delta[:, c])
    return out
