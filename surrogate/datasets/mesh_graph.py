"""From mesh connectivity to a graph: edges, boundary faces, node types.

Edges are the edges of the cells, in both directions, each once. Node types follow
MeshGraphNet's roles: interior, wall, inflow, outflow. When a file carries none they are
inferred from the boundary faces (faces that belong to one cell only) and, given a
velocity field, from the flow through them: a boundary node whose velocity stays zero is a
wall (no slip), one where the mean flow enters through the outward normal is inflow, the
rest outflow. Without a velocity every boundary node is a wall.

Shapes:
    edge_index (2, E) int64, row 0 source, row 1 target
    edge_attr  (E, d + 1)  relative position x_target - x_source and its length
    node_type  (N,) int64
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from surrogate.errors import InputError

if TYPE_CHECKING:
    import torch_geometric

INTERIOR, WALL, INFLOW, OUTFLOW = 0, 1, 2, 3
NODE_TYPES = ("interior", "wall", "inflow", "outflow")

CELL_EDGES = {
    "triangle": [(0, 1), (1, 2), (2, 0)],
    "quad": [(0, 1), (1, 2), (2, 3), (3, 0)],
    "tetra": [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)],
    "hexahedron": [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)],
    "wedge": [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3), (0, 3), (1, 4), (2, 5)],
    "pyramid": [(0, 1), (1, 2), (2, 3), (3, 0), (0, 4), (1, 4), (2, 4), (3, 4)],
}
CELL_FACES: dict[str, list[tuple[int, ...]]] = {
    "triangle": [(0, 1), (1, 2), (2, 0)],
    "quad": [(0, 1), (1, 2), (2, 3), (3, 0)],
    "tetra": [(0, 2, 1), (0, 1, 3), (1, 2, 3), (0, 3, 2)],
    "hexahedron": [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)],
    "wedge": [(0, 2, 1), (3, 4, 5), (0, 1, 4, 3), (1, 2, 5, 4), (2, 0, 3, 5)],
    "pyramid": [(0, 3, 2, 1), (0, 1, 4), (1, 2, 4), (2, 3, 4), (3, 0, 4)],
}


def mesh_edges(cells: dict[str, np.ndarray], n_nodes: int) -> np.ndarray:
    """Unique directed edges (2, E) of the cells; isolated nodes get a self-loop."""
    pairs = [c[:, [a, b]] for t, c in cells.items() for a, b in CELL_EDGES[t]]
    und = np.sort(np.concatenate(pairs), axis=1)  # (E_und, 2), smaller id first
    und = np.unique(und, axis=0)
    both = np.concatenate([und, und[:, ::-1]]).T  # (2, 2 E_und)
    isolated = np.setdiff1d(np.arange(n_nodes), both[0])
    loops = np.stack([isolated, isolated])
    edges = np.concatenate([both, loops], axis=1)
    return edges[:, np.lexsort((edges[0], edges[1]))]


def boundary_faces(cells: dict[str, np.ndarray], points: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Faces that belong to exactly one cell, and their outward unit normals.

    Returns (faces, normals): a list of (k,) node-id arrays and (F, d) normals pointing away
    from the owning cell's centroid.
    """
    rows, centres = [], []
    for t, c in cells.items():
        centroid = points[c].mean(axis=1)  # (M, d)
        for local in CELL_FACES[t]:
            face = np.full((len(c), 4), -1, dtype=np.int64)  # padded to 4 nodes so types mix
            face[:, : len(local)] = c[:, list(local)]
            rows.append(face)
            centres.append(centroid)
    face_all, centre_all = np.concatenate(rows), np.concatenate(centres)  # (F_all, 4), (F_all, d)
    _, first, counts = np.unique(np.sort(face_all, axis=1), axis=0, return_index=True, return_counts=True)
    keep = first[counts == 1]
    faces = [f[f >= 0] for f in face_all[keep]]
    normals = np.zeros((len(keep), points.shape[1]))
    for i, (f, centre) in enumerate(zip(faces, centre_all[keep])):
        p = points[f]
        n = np.array([p[1, 1] - p[0, 1], p[0, 0] - p[1, 0]]) if points.shape[1] == 2 else np.cross(p[1] - p[0], p[2] - p[0])
        if np.dot(n, p.mean(0) - centre) < 0:
            n = -n
        normals[i] = n / max(np.linalg.norm(n), 1e-300)
    return faces, normals


def infer_node_types(
    cells: dict[str, np.ndarray], points: np.ndarray, velocity: np.ndarray | None = None, wall_tol: float = 1e-3
) -> np.ndarray:
    """Node types from the boundary faces (and the flow through them, given velocity (T, N, d))."""
    n = points.shape[0]
    faces, normals = boundary_faces(cells, points)
    node_normal = np.zeros_like(points)
    on_boundary = np.zeros(n, dtype=bool)
    for f, nrm in zip(faces, normals):
        node_normal[f] += nrm
        on_boundary[f] = True
    types = np.full(n, INTERIOR, dtype=np.int64)
    if velocity is None:
        types[on_boundary] = WALL
        return types
    if velocity.ndim != 3 or velocity.shape[1:] != points.shape:
        raise InputError(f"node types: velocity of shape {velocity.shape}, expected (T, {n}, {points.shape[1]})")
    speed = np.linalg.norm(velocity, axis=-1).max(axis=0)  # (N,)
    still = speed <= wall_tol * max(float(speed.max()), 1e-300)
    inward = (velocity.mean(axis=0) * node_normal).sum(-1) < 0
    types[on_boundary & still] = WALL
    types[on_boundary & ~still & inward] = INFLOW
    types[on_boundary & ~still & ~inward] = OUTFLOW
    return types


def to_graph(points: np.ndarray, cells: dict[str, np.ndarray], node_type: np.ndarray) -> torch_geometric.data.Data:
    """The mesh as a torch_geometric `Data`: pos, edge_index, edge_attr, node_type."""
    from torch_geometric.data import Data

    n = points.shape[0]
    if node_type.shape != (n,):
        raise InputError(f"to_graph: node_type of shape {node_type.shape}, expected ({n},)")
    edges = mesh_edges(cells, n)
    rel = points[edges[1]] - points[edges[0]]  # (E, d)
    attr = np.concatenate([rel, np.linalg.norm(rel, axis=1, keepdims=True)], axis=1)
    return Data(
        pos=torch.as_tensor(points, dtype=torch.float32),
        edge_index=torch.as_tensor(edges, dtype=torch.long),
        edge_attr=torch.as_tensor(attr, dtype=torch.float32),
        node_type=torch.as_tensor(node_type, dtype=torch.long),
        num_nodes=n,
    )
