"""The four CFDBench flows set up on the `Incompressible2D` solver, one case at a time.

A case is CFDBench's `case.json` dictionary (SI units, dynamic viscosity mu, density rho);
the solver works with the kinematic viscosity nu = mu / rho. Geometries follow CFDBench:

    cavity    width x height box, lid (top) moving at vel_top
    tube      width x height channel, uniform inflow vel_in on the left, outflow on the right
    dam       width x height channel, inflow `velocity`, a barrier on the floor from x = 0.5,
              barrier_width wide and barrier_height high
    cylinder  channel [x_min, x_max] x [y_min, y_max] around a cylinder of `radius` at (0, 0),
              inflow vel_in

Obstacles are staircase solids on the solver grid (see `Incompressible2D`).
"""

from __future__ import annotations

import math

import torch

from surrogate.errors import InputError
from surrogate.fields import GridState
from surrogate.solvers.incompressible2d import Incompressible2D, Side, channel

PROBLEMS = ("cavity", "tube", "dam", "cylinder")
# CFDBench's base cases, the parameter each problem's boundary condition scales, and the
# geometry ranges of its `geo` subsets; frames are FRAME_DT apart.
FRAME_DT = 0.1
BASE = {
    "cavity": {"vel_top": 1.0, "density": 1.0, "viscosity": 0.01, "height": 1.0, "width": 1.0},
    "tube": {"vel_in": 1.0, "density": 1.0, "viscosity": 0.01, "height": 0.2, "width": 1.0},
    "dam": {"velocity": 1.0, "density": 1.0, "viscosity": 0.01, "height": 0.4, "width": 1.5, "barrier_height": 0.1, "barrier_width": 0.05},
    "cylinder": {
        "vel_in": 1.0,
        "density": 1.0,
        "viscosity": 0.004,
        "radius": 0.1,
        "x_min": -0.5,
        "x_max": 1.5,
        "y_min": -0.5,
        "y_max": 0.5,
    },
}
BC_KEY = {"cavity": "vel_top", "tube": "vel_in", "dam": "velocity", "cylinder": "vel_in"}
GEO = {
    "cavity": {"width": (0.5, 2.0), "height": (0.5, 2.0)},
    "tube": {"width": (0.5, 2.0), "height": (0.1, 0.4)},
    "dam": {"barrier_height": (0.05, 0.2), "barrier_width": (0.05, 0.2)},
    "cylinder": {"radius": (0.06, 0.15)},
}
MAX_CELL_REYNOLDS = 10.0


def velocity_scale(problem: str, case: dict[str, float]) -> float:
    return case[{"cavity": "vel_top", "dam": "velocity"}.get(problem, "vel_in")]


def domain(problem: str, case: dict[str, float]) -> tuple[float, float]:
    """(width, height) of the computational box."""
    if problem == "cylinder":
        return case["x_max"] - case["x_min"], case["y_max"] - case["y_min"]
    return case["width"], case["height"]


def cells_needed(problem: str, case: dict[str, float]) -> int:
    """The fewest cells per side that resolve the case (cell Reynolds number <= MAX_CELL_REYNOLDS)."""
    nu = case["viscosity"] / case["density"]
    return math.ceil(abs(velocity_scale(problem, case)) * max(domain(problem, case)) / (MAX_CELL_REYNOLDS * nu))


def check_resolvable(problem: str, case: dict[str, float], nx: int, ny: int, multiple: int = 1) -> None:
    """Fail before running when the grid cannot resolve the case (cell Reynolds number); the
    advice names a resolution that is a multiple of `multiple`."""
    for k in ("density", "viscosity"):
        if case[k] <= 0:
            raise InputError(f"{problem} case: {k} must be positive, got {case[k]}")
    w, h = domain(problem, case)
    nu = case["viscosity"] / case["density"]
    u = abs(velocity_scale(problem, case))
    re_cell = u * max(w / nx, h / ny) / nu
    if re_cell > MAX_CELL_REYNOLDS:
        need = -(-cells_needed(problem, case) // multiple) * multiple
        raise InputError(
            f"{problem} case {case}: cell Reynolds number {re_cell:.1f} > {MAX_CELL_REYNOLDS} on a {nx}x{ny} grid; "
            f"use at least {need} cells per side{' (--resolution)' if multiple > 1 else ''}, "
            f"a higher viscosity (>= {u * max(w / nx, h / ny) / MAX_CELL_REYNOLDS * case['density']:.3g}) "
            "or a lower velocity"
        )


def setup(problem: str, case: dict[str, float], n: int, dt: float, device: str = "cpu") -> tuple[Incompressible2D, GridState]:
    """Solver on an n x n grid over the case's box and its initial state (fluid at rest)."""
    if problem not in PROBLEMS:
        raise InputError(f"CFDBench problem {problem!r}: expected one of {PROBLEMS}")
    check_resolvable(problem, case, n, n)
    w, h = domain(problem, case)
    nu = case["viscosity"] / case["density"]
    vel = velocity_scale(problem, case)
    kwargs = {"dt": dt, "max_substep": 1.0, "device": device}
    if problem == "cavity":
        solver = Incompressible2D(n, n, w, h, {"y_high": Side("wall", tangential=1.0)}, **kwargs)  # type: ignore[arg-type]
        return solver, solver.init(vel, nu)
    solver = channel(n, n, w, h, **kwargs)  # type: ignore[arg-type]
    x = (torch.arange(n, dtype=torch.float64) + 0.5) * solver.dx
    y = (torch.arange(n, dtype=torch.float64) + 0.5) * solver.dy
    if problem == "tube":
        return solver, solver.init(vel, nu)
    if problem == "dam":
        solid = (x[:, None] >= 0.5) & (x[:, None] <= 0.5 + case["barrier_width"]) & (y[None, :] <= case["barrier_height"])
    else:
        xc, yc = x + case["x_min"], y + case["y_min"]
        solid = xc[:, None] ** 2 + yc[None, :] ** 2 <= case["radius"] ** 2
    if not bool(solid.any()):
        raise InputError(f"{problem} case {case}: the obstacle covers no cell of the {n}x{n} grid; refine the grid")
    return solver, solver.init(vel, nu, solid=solid[None])


def frames(solver: Incompressible2D, state: GridState, n_frames: int, out: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the case and return u, v as CFDBench arrays (T, out, out), rows along y.

    The solver grid must be a multiple of `out`; cells are averaged down to it.
    """
    if solver.nx % out or solver.ny % out:
        raise InputError(f"solver grid {solver.nx}x{solver.ny} is not a multiple of {out}")
    fx, fy = solver.nx // out, solver.ny // out
    us, vs = [], []
    for k in range(n_frames):
        if k:
            state = solver.step(state)
        c = solver.cell_velocity(state)[0]  # (2, NX, NY)
        c = c.reshape(2, out, fx, out, fy).mean((2, 4))  # (2, out, out), x first
        us.append(c[0].T)
        vs.append(c[1].T)
    return torch.stack(us), torch.stack(vs)
