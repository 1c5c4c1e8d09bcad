"""Mesh steps from a stream as the mesh task's training data: channels, graph batches, the
normalization, and the held-out simulations as a mesh store.

Each streamed step holds point fields of one mesh (an OpenFOAM template's), (N,) scalars and
(N, d) vectors, named as `surrogate convert mesh` names them (`p`, `U_x`, `U_y`), so a model
trained on a stream rolls out on a converted case and the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from surrogate.datasets.mesh import MeshSeries
from surrogate.datasets.mesh_store import write_mesh_store
from surrogate.errors import InputError
from surrogate.online.protocol import StepMessage
from surrogate.online.server import StreamSchema
from surrogate.online.source import Pair
from surrogate.operators.mesh_surrogate import predicted_nodes

MAX_STATS_PAIRS = 256  # pairs of the buffer the normalization is computed from
Part = tuple[str, int | None]  # (streamed field, component or None for a scalar)


def node_channels(stream: StreamSchema, fields: list[str], n_nodes: int) -> tuple[list[str], list[Part]]:
    """The channels (`p`, `U_x`, ...) of the streamed point fields and where each comes from."""
    names = list(fields) or sorted(stream.fields)
    missing = [f for f in names if f not in stream.fields]
    if missing:
        raise InputError(f"data.fields {missing}: not among the streamed fields {sorted(stream.fields)}")
    channels: list[str] = []
    parts: list[Part] = []
    for f in names:
        shape = stream.fields[f][1]
        if not shape or shape[0] != n_nodes or len(shape) > 2:
            raise InputError(f"streamed field {f!r} of shape {shape}: expected ({n_nodes},) or ({n_nodes}, d) on the template's mesh")
        if len(shape) == 1:
            channels.append(f)
            parts.append((f, None))
        else:
            channels += [f"{f}_{'xyz'[i]}" for i in range(shape[1])]
            parts += [(f, i) for i in range(shape[1])]
    return channels, parts


def nodes(msg: StepMessage, parts: list[Part]) -> Tensor:
    """A step's fields as (N, C) float32."""
    cols = [msg.fields[f] if i is None else msg.fields[f][:, i] for f, i in parts]
    return torch.from_numpy(np.stack(cols, axis=1).astype(np.float32))


def mesh_collate(graph: Data, parts: list[Part]) -> Callable[[list[Pair]], dict[str, Any]]:
    """Pairs -> {"graph": a Batch of the mesh graph with u (step s) and target (step s + 1)}."""

    def collate(pairs: list[Pair]) -> dict[str, Any]:
        items = []
        for p, q in pairs:
            g = graph.clone()
            g.u, g.target = nodes(p, parts), nodes(q, parts)
            items.append(g)
        return {"graph": Batch.from_data_list(items)}

    return collate


def batch_statistics(batch: Batch, graph: Data) -> tuple[Tensor, Tensor, Tensor, Tensor, float]:
    """Field and increment mean/std over the predicted nodes of a batch (the pairs the buffer
    holds when training starts), the mean edge length."""
    keep = predicted_nodes(batch.node_type)
    u, d = batch.u[keep].double(), (batch.target - batch.u)[keep].double()
    return u.mean(0), u.std(0).clamp_min(1e-8), d.mean(0), d.std(0).clamp_min(1e-8), float(graph.edge_attr[:, -1].mean())


def held_out_store(held: dict[str, list[StepMessage]], mesh: tuple[np.ndarray, dict[str, np.ndarray], np.ndarray], path: Path) -> Path:
    """The held-out simulations as a mesh store (cut to the shortest one)."""
    runs = [steps for steps in held.values() if len(steps) >= 2]
    if not runs:
        raise InputError("no held-out simulation streamed two steps: nothing to roll out on")
    t = min(len(r) for r in runs)
    points, cells, node_type = mesh
    series = [
        MeshSeries(
            points,
            cells,
            {f: np.stack([m.fields[f] for m in r[:t]]) for f in r[0].fields},
            np.array([m.time for m in r[:t]]),
            f"held-out simulation {r[0].simulation_id} {r[0].parameters}",
            node_type,
        )
        for r in runs
    ]
    return write_mesh_store(path, series, "held-out")
