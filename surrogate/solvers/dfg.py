"""The DFG benchmark "flow around a cylinder" (Schaefer & Turek 1996), tests 2D-1 and 2D-2.

Channel 2.2 x 0.41, cylinder of diameter D = 0.1 centred at (0.2, 0.2), nu = 1e-3, rho = 1,
parabolic inflow 4 U_m y (H - y) / H^2 with mean velocity U = 2 U_m / 3:

    2D-1  U_m = 0.3 (U = 0.2, Re = 20): steady. Drag and lift coefficients
          c = 2 F / (rho U^2 D), pressure difference p(0.15, 0.2) - p(0.25, 0.2).
    2D-2  U_m = 1.5 (U = 1, Re = 100): periodic vortex shedding. Maximum drag and lift
          coefficients and the Strouhal number St = D f / U of the lift.

`REFERENCE` holds the paper's bands (its Table 4). Both tests run on `NavierStokesFEM` over
`cylinder_channel_mesh`; 2D-2 starts from rest, spins up with a coarse time step until the
shedding is established, then measures with the fine step once the cycle has adjusted to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from surrogate.errors import InputError
from surrogate.solvers.cylinder_mesh import CylinderChannel, MeshSpec, cylinder_channel_mesh, surface_size
from surrogate.solvers.navier_stokes_fem import FlowState, NavierStokesFEM

GEOMETRY = CylinderChannel()
VISCOSITY = 1e-3
DIAMETER = 2 * GEOMETRY.radius
# Cell Reynolds number U_m h / nu on the cylinder surface above which the boundary layer is not
# resolved (P2 elements: about 5 nodes across a Re = 100 boundary layer at this limit).
MAX_SURFACE_CELL_REYNOLDS = 25.0

REFERENCE: dict[str, dict[str, tuple[float, float]]] = {
    "2D-1": {"drag": (5.57, 5.59), "lift": (0.0104, 0.0110), "pressure_difference": (0.1172, 0.1176)},
    "2D-2": {"drag_max": (3.22, 3.24), "lift_max": (0.99, 1.01), "strouhal": (0.295, 0.305)},
}


def parabolic_inflow(peak: float) -> Callable[[NDArray], NDArray]:
    h = GEOMETRY.height
    return lambda y: 4 * peak * y * (h - y) / h**2


def coefficients(force: NDArray, mean_velocity: float) -> NDArray:
    """(drag, lift) coefficients of a force (2,) or (T, 2) per unit depth (rho = 1)."""
    return 2 * np.asarray(force) / (mean_velocity**2 * DIAMETER)


def check_resolution(spec: MeshSpec, peak_velocity: float) -> None:
    """Fail before running when the cylinder's boundary layer is not resolved."""
    re_h = peak_velocity * surface_size(GEOMETRY, spec) / VISCOSITY
    if re_h > MAX_SURFACE_CELL_REYNOLDS:
        need = int(np.ceil(2 * np.pi * GEOMETRY.radius * peak_velocity / (MAX_SURFACE_CELL_REYNOLDS * VISCOSITY)))
        raise InputError(
            f"DFG mesh: n_cylinder = {spec.n_cylinder} gives a surface cell Reynolds number {re_h:.1f} > "
            f"{MAX_SURFACE_CELL_REYNOLDS} at U_m = {peak_velocity}; use n_cylinder >= {need}"
        )


def _vertex(solver: NavierStokesFEM, point: tuple[float, float]) -> int:
    """Index of the mesh vertex at `point` (the cylinder's front and rear are vertices)."""
    p = solver.mesh.p[:, : solver.mesh.nvertices]
    i = int(np.argmin(np.hypot(p[0] - point[0], p[1] - point[1])))
    if np.hypot(p[0, i] - point[0], p[1, i] - point[1]) > 1e-12:
        raise InputError(f"DFG mesh: no vertex at {point}; use an even n_cylinder")
    return i


@dataclass(frozen=True)
class Steady2D1:
    drag: float
    lift: float
    pressure_difference: float
    dofs: int
    seconds: float


def steady_2d1(spec: MeshSpec) -> Steady2D1:
    """Test 2D-1 (Re = 20) by Newton's method on the steady equations."""
    peak = 0.3
    check_resolution(spec, peak)
    start = time.perf_counter()
    solver = NavierStokesFEM(cylinder_channel_mesh(GEOMETRY, spec), VISCOSITY, parabolic_inflow(peak))
    state = solver.steady()
    drag, lift = coefficients(state.force, 2 * peak / 3)
    front, rear = _vertex(solver, (0.15, 0.2)), _vertex(solver, (0.25, 0.2))
    dp = float(state.pressure[front] - state.pressure[rear])
    return Steady2D1(float(drag), float(lift), dp, int(solver.nu_dofs + solver.np_dofs), time.perf_counter() - start)


@dataclass(frozen=True)
class Periodic2D2:
    drag_max: float  # over the last `periods` full lift periods
    lift_max: float
    strouhal: float
    periods: int
    drift: float  # largest change of the per-period drag or lift maximum between the last two periods
    time: NDArray  # (T,) of the measured run (after the spin-up)
    drag: NDArray  # (T,)
    lift: NDArray  # (T,)
    dofs: int
    seconds: float


def _peak(y: NDArray) -> float:
    """Maximum of a sampled periodic signal, refined by a parabola through the top three samples."""
    i = int(np.clip(np.argmax(y), 1, len(y) - 2))
    ym, y0, yp = y[i - 1], y[i], y[i + 1]
    curvature = ym - 2 * y0 + yp
    return float(y0 - 0.125 * (yp - ym) ** 2 / curvature) if curvature < 0 else float(y0)


def upcrossings(t: NDArray, y: NDArray) -> NDArray:
    """Times where y crosses zero upwards, linearly interpolated."""
    i = np.nonzero((y[:-1] < 0) & (y[1:] >= 0))[0]
    return t[i] - y[i] * (t[i + 1] - t[i]) / (y[i + 1] - y[i])


def periodic_2d2(
    spec: MeshSpec,
    dt: float = 0.0025,
    spinup_dt: float = 0.01,
    spinup_time: float = 5.0,
    measure_time: float = 3.0,
    periods: int = 2,
    on_step: Callable[[FlowState], None] | None = None,
) -> Periodic2D2:
    """Test 2D-2 (Re = 100): spin up from rest with `spinup_dt`, continue with `dt` for
    `measure_time` and measure the last `periods` full lift periods.

    The shedding is periodic from t = 5 on at any time step, but its amplitude depends on the
    step (dt = 0.01 over-predicts the lift maximum by 5%); after the change to `dt` it relaxes
    to the new cycle within a few periods (per-period change about 0.2x the previous), so
    `measure_time` must leave those periods out; `drift` shows whether it did.
    """
    peak = 1.5
    check_resolution(spec, peak)
    if not (0 < dt <= spinup_dt and spinup_time >= 0 and measure_time > 0 and periods >= 1):
        raise InputError(
            f"DFG 2D-2: need 0 < dt <= spinup_dt, spinup_time >= 0, measure_time > 0, periods >= 1; "
            f"got {dt}, {spinup_dt}, {spinup_time}, {measure_time}, {periods}"
        )
    start = time.perf_counter()
    solver = NavierStokesFEM(cylinder_channel_mesh(GEOMETRY, spec), VISCOSITY, parabolic_inflow(peak), dt=spinup_dt)
    state = solver.init()
    for _ in range(round(spinup_time / spinup_dt)):
        state = solver.step(state)
        if on_step:
            on_step(state)
    solver.dt = dt
    times, forces = [], []
    for _ in range(round(measure_time / dt)):
        state = solver.step(state)
        times.append(state.time)
        forces.append(state.force)
        if on_step:
            on_step(state)
    t, (drag, lift) = np.array(times), coefficients(np.array(forces), 2 * peak / 3).T
    crossings = upcrossings(t, lift)
    if len(crossings) < periods + 2:
        raise InputError(
            f"DFG 2D-2: {len(crossings)} lift up-crossings in the {measure_time} s after the spin-up, need {periods + 2} "
            f"(measure {periods} periods and at least one before them): lengthen measure_time or spinup_time"
        )
    per_period = np.array(
        [[_peak(y[(t >= a) & (t <= b)]) for y in (drag, lift)] for a, b in zip(crossings[:-1], crossings[1:])]
    )  # (periods seen, 2)
    window = (t >= crossings[-periods - 1]) & (t <= crossings[-1])
    return Periodic2D2(
        drag_max=_peak(drag[window]),
        lift_max=_peak(lift[window]),
        strouhal=float(DIAMETER * periods / (crossings[-1] - crossings[-periods - 1]) / (2 * peak / 3)),
        periods=periods,
        drift=float(np.abs(per_period[-1] - per_period[-2]).max()),
        time=t,
        drag=drag,
        lift=lift,
        dofs=int(solver.nu_dofs + solver.np_dofs),
        seconds=time.perf_counter() - start,
    )


def in_band(value: float, band: tuple[float, float]) -> bool:
    return band[0] <= value <= band[1]
