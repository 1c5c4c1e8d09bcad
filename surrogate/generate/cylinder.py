"""Vortex shedding behind a cylinder, on its unstructured mesh: mesh-surrogate training data
made here, for users without a mesh dataset of their own.

The body-fitted finite-element solver (`solvers.navier_stokes_fem`, validated on the DFG
benchmark 2D-2: Re = 100 in the 2.2 x 0.41 channel, `solvers.dfg`) starts from rest, runs
`spinup` time units until the wake sheds periodically, then keeps `n_frames` frames
`interval` apart: the velocity and pressure at the mesh vertices. Written as one mesh store
(one trajectory, the triangle mesh, node types inferred from the boundary and the flow) with
its XDMF sidecar, which `surrogate train` reads through `data.paths` and ParaView opens.

    points (V, 2), cells {"triangle": (M, 3)}, velocity (T, V, 2), pressure (T, V)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surrogate.datasets.mesh import MeshSeries
from surrogate.datasets.mesh_store import write_mesh_store
from surrogate.errors import InputError
from surrogate.solvers.cylinder_mesh import MeshSpec, cylinder_channel_mesh
from surrogate.solvers.dfg import GEOMETRY, VISCOSITY, check_resolution, parabolic_inflow
from surrogate.solvers.navier_stokes_fem import NavierStokesFEM

PEAK_VELOCITY = 1.5  # DFG 2D-2: mean inflow 1, Re = 100 on the diameter


@dataclass
class CylinderGenConfig:
    """The run: mesh resolution (edges on the cylinder), solver step, spin-up and the frames kept."""

    n_cylinder: int = 24
    dt: float = 0.01
    spinup: float = 5.0
    n_frames: int = 60
    interval: float = 0.02

    def __post_init__(self) -> None:
        if self.dt <= 0 or self.spinup < 0 or self.n_frames < 2 or self.interval < self.dt:
            raise InputError(
                f"generate cylinder: need dt > 0, spinup >= 0, n_frames >= 2 and interval >= dt; got dt {self.dt}, "
                f"spinup {self.spinup}, n_frames {self.n_frames}, interval {self.interval}"
            )
        if abs(self.interval / self.dt - round(self.interval / self.dt)) > 1e-9:
            raise InputError(f"generate cylinder: interval {self.interval} must be a whole number of solver steps dt = {self.dt}")
        check_resolution(MeshSpec(n_cylinder=self.n_cylinder), PEAK_VELOCITY)

    @property
    def steps_per_frame(self) -> int:
        return round(self.interval / self.dt)

    def solver_steps(self) -> int:
        return round(self.spinup / self.dt) + (self.n_frames - 1) * self.steps_per_frame


def generate_cylinder(cfg: CylinderGenConfig, out: str | Path, on_step: Callable[[], None] | None = None) -> Path:
    """Run the flow and write the mesh store `out` (atomically, with its .xdmf sidecar)."""
    mesh = cylinder_channel_mesh(GEOMETRY, MeshSpec(n_cylinder=cfg.n_cylinder))
    solver = NavierStokesFEM(mesh, VISCOSITY, parabolic_inflow(PEAK_VELOCITY), dt=cfg.dt)
    n_vertices = solver.np_dofs  # the P1 pressure lives on the vertices; the P2 nodes list them first
    state = solver.init()

    def advance(n: int) -> None:
        nonlocal state
        for _ in range(n):
            state = solver.step(state)
            if on_step:
                on_step()

    advance(round(cfg.spinup / cfg.dt))
    velocity, pressure, times = [], [], []
    for k in range(cfg.n_frames):
        if k:
            advance(cfg.steps_per_frame)
        velocity.append(state.velocity[:, :n_vertices].T)  # (V, 2)
        pressure.append(state.pressure[:n_vertices])
        times.append(state.time)
    series = MeshSeries(
        points=mesh.p[:, :n_vertices].T.copy(),
        cells={"triangle": mesh.t[:3].T.astype(np.int64)},
        fields={"velocity": np.stack(velocity).astype(np.float32), "pressure": np.stack(pressure).astype(np.float32)},
        times=np.asarray(times),
        source=f"cylinder flow at Re = 100 ({cfg.n_cylinder} edges on the cylinder)",
    )
    return write_mesh_store(out, [series], name="cylinder_flow")
