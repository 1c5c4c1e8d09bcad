"""The built-in solvers as streams: each one's parameters, their sampling ranges, and how one
simulation starts, for `stream.solver: <name>` of `surrogate online`.

    ns2d                       NS2D (Li et al.'s forced turbulence), parameter viscosity
    gpme-heat|pme|stefan       the generalized porous medium equation's cases (1D), parameter
                               conductivity, degree or u_star in the ranges `generate gpme` uses
    cavity|tube|dam|cylinder   CFDBench's problems on the projection solver, parameters the
                               case's density, viscosity and boundary velocity (0.5x to 2x the
                               base case, as `generate cfdbench --subset prop|bc`); the others
                               at the base case's values

`run_builtin` runs in a Dask worker: it builds the solver and its initial state from the
sampled parameters and streams every step through the Python client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from surrogate.errors import InputError
from surrogate.fields import GridState
from surrogate.online.curve import ClientKeys
from surrogate.solvers.cfdbench_problems import BASE, BC_KEY, FRAME_DT
from surrogate.solvers.gpme import GPME, GPME_RANGES, PARAM_NAME
from surrogate.solvers.ns2d import NS2D
from surrogate.stepper import AbstractStepper

Make = Callable[[dict[str, float], int, float, int], tuple[AbstractStepper, GridState]]  # (params, resolution, dt, seed)


@dataclass(frozen=True)
class Builtin:
    space: dict[str, tuple[float, float]]  # each parameter's default sampling range
    make: Make
    dt: float  # the output interval when stream.dt is not set for it


def _ns2d(params: dict[str, float], n: int, dt: float, seed: int) -> tuple[AbstractStepper, GridState]:
    solver = NS2D(n, dt=dt)
    return solver, solver.init_random(1, params["viscosity"], seed=seed)


def _gpme(case: str) -> Make:
    def make(params: dict[str, float], n: int, dt: float, seed: int) -> tuple[AbstractStepper, GridState]:
        solver = GPME(case, n, dt=dt)
        return solver, solver.init(params[PARAM_NAME[case]], batch=1)

    return make


def _cfdbench(problem: str) -> Make:
    def make(params: dict[str, float], n: int, dt: float, seed: int) -> tuple[AbstractStepper, GridState]:
        from surrogate.solvers.cfdbench_problems import setup

        return setup(problem, {**BASE[problem], **params}, n, dt)

    return make


def _cfdbench_space(problem: str) -> dict[str, tuple[float, float]]:
    base = BASE[problem]
    keys = ("density", "viscosity", BC_KEY[problem])
    return {k: (0.5 * base[k], 2.0 * base[k]) for k in keys}


BUILTINS: dict[str, Builtin] = {
    "ns2d": Builtin({"viscosity": (1e-3, 1e-3)}, _ns2d, 0.25),
    **{f"gpme-{case}": Builtin({PARAM_NAME[case]: GPME_RANGES[case]}, _gpme(case), 0.05) for case in GPME_RANGES},
    **{p: Builtin(_cfdbench_space(p), _cfdbench(p), FRAME_DT) for p in BASE},
}


def run_builtin(
    data: str,
    control: str,
    sim_id: str,
    params: dict[str, float],
    keys: ClientKeys | None,
    name: str,
    seed: int,
    resolution: int,
    dt: float,
    n_steps: int,
) -> str:
    """One simulation of the built-in solver `name`, streamed to the server."""
    from surrogate.online.client import OnlineClient, stream

    if name not in BUILTINS:
        raise InputError(f"stream.solver {name!r}: expected one of {sorted(BUILTINS)}")
    torch.set_num_threads(1)
    solver, state = BUILTINS[name].make(params, resolution, dt, seed)
    with OnlineClient(data, control, sim_id, params, curve=keys) as client:
        stream(solver, state, n_steps, client)
    return sim_id
