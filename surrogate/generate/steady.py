"""`surrogate generate steady`: steady channel flows around varying obstacles, as point clouds.

Each sample is an obstacle (an ellipse of random aspect ratio or a random NACA 4-digit
airfoil) at a random angle of attack in a channel with a Poiseuille inflow of random mean
speed. The `Incompressible2D` solver (staircase obstacle, batched over samples) runs from
the Poiseuille flow until the velocity stops changing: the largest change per unit time,
relative to the inflow speed, must fall below `tol`. A batch that does not settle (vortex
shedding at too high a Reynolds number) is an error naming its samples, never written.

A sample is the fluid cell centres as a point cloud with u, v, p (kinematic pressure),
the signed distance to the no-slip walls (SDF: the obstacle and the channel's sides), node types, the surface band (fluid cells that
touch the obstacle), the obstacle's boundary ring and the global parameters (inflow speed,
angle of attack in degrees), written to the steady point-cloud store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from surrogate.datasets.geometry import check_ring, ellipse_ring, naca_ring, place_ring, signed_distance
from surrogate.datasets.mesh_graph import INFLOW, OUTFLOW, WALL
from surrogate.datasets.steady_store import SteadySample, write_steady_store
from surrogate.errors import InputError
from surrogate.solvers.incompressible2d import channel, parabolic

SHAPES = ("ellipse", "naca")
PARAM_NAMES = ("velocity", "angle")
FIELDS = ("u", "v", "p")


@dataclass
class SteadyGenConfig:
    """Channel [0, length] x [0, height] on nx x ny cells; the obstacle's chord is `chord`."""

    n_samples: int = 32
    nx: int = 128
    ny: int = 64
    length: float = 2.0
    height: float = 1.0
    centre: list[float] = field(default_factory=lambda: [0.6, 0.5])
    chord: float = 0.35
    shapes: list[str] = field(default_factory=lambda: list(SHAPES))
    angle: list[float] = field(default_factory=lambda: [-20.0, 20.0])
    velocity: list[float] = field(default_factory=lambda: [0.5, 1.5])
    viscosity: float = 0.02
    tol: float = 1e-3
    max_time: float = 30.0
    batch: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        bad = sorted(set(self.shapes) - set(SHAPES))
        if bad or not self.shapes:
            raise InputError(f"shapes {bad or self.shapes}: expected a non-empty list of {SHAPES}")
        for name in ("angle", "velocity"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise InputError(f"{name}: range [{lo}, {hi}] is empty")
        if self.velocity[0] <= 0 or self.viscosity <= 0 or self.chord <= 0:
            raise InputError(f"velocity, viscosity and chord must be positive; got {self.velocity}, {self.viscosity}, {self.chord}")
        if self.n_samples < 1 or self.batch < 1:
            raise InputError(f"n_samples and batch must be >= 1; got {self.n_samples}, {self.batch}")
        x, y = self.centre
        if not (self.chord < x < self.length - self.chord and self.chord < y < self.height - self.chord):
            raise InputError(
                f"centre {self.centre}: the obstacle (chord {self.chord}) must sit inside the channel "
                f"{self.length} x {self.height} with a chord of clearance"
            )


def random_shape(kind: str, chord: float, rng: np.random.Generator) -> np.ndarray:
    """An obstacle ring (K, 2) centred at 0 with the given chord."""
    if kind == "ellipse":
        return ellipse_ring(chord / 2, chord / 2 * rng.uniform(0.3, 1.0))
    code = f"{rng.integers(0, 5)}{rng.integers(2, 6)}{rng.integers(8, 21):02d}"
    return naca_ring(code, chord)


def draw_samples(cfg: SteadyGenConfig) -> list[tuple[np.ndarray, float, float]]:
    """(placed ring, inflow speed, angle in degrees) of every sample, from the seed alone."""
    rng = np.random.default_rng(cfg.seed)
    out = []
    for _ in range(cfg.n_samples):
        kind = cfg.shapes[int(rng.integers(len(cfg.shapes)))]
        ring = random_shape(kind, cfg.chord, rng)
        angle, speed = rng.uniform(*cfg.angle), rng.uniform(*cfg.velocity)
        out.append((check_ring(place_ring(ring, tuple(cfg.centre), angle), f"{kind} obstacle"), float(speed), float(angle)))
    return out


def solve_batch(
    cfg: SteadyGenConfig, rings: list[np.ndarray], speeds: list[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Steady u, v, p at the cell centres (B, NX, NY) each, the solid masks, and the time it took."""
    solver = channel(cfg.nx, cfg.ny, cfg.length, cfg.height, profile=parabolic, dt=0.5, max_substep=1.0)
    xc = (np.arange(cfg.nx) + 0.5) * solver.dx
    yc = (np.arange(cfg.ny) + 0.5) * solver.dy
    centres = np.stack(np.meshgrid(xc, yc, indexing="ij"), -1).reshape(-1, 2)  # (NX * NY, 2)
    solid = np.stack([signed_distance(centres, [r]).reshape(cfg.nx, cfg.ny) < 0 for r in rings])
    if not solid.any((1, 2)).all():
        raise InputError(f"an obstacle covers no cell of the {cfg.nx} x {cfg.ny} grid; refine the grid")
    state = solver.init(torch.tensor(speeds), cfg.viscosity, solid=torch.from_numpy(solid))
    u, v = solver.unpack(state.fields)
    u = u.clone()
    u[:, 1:-1] = state.params[:, :1, None] * parabolic(solver.y_c)[None, None]  # start from Poiseuille flow
    state = state.evolve(solver.pack(u, v), state.time)
    t, change = 0.0, np.inf
    while t < cfg.max_time:
        new = solver.step(state)
        rate = (new.fields - state.fields).abs().amax((1, 2, 3)) / (solver.dt * state.params[:, 0])  # (B,)
        state, t, change = new, t + solver.dt, float(rate.max())
        if change < cfg.tol:
            break
    else:
        raise InputError(
            f"the flow did not settle within max_time {cfg.max_time}: the velocity still changes at "
            f"{change:.2e} x inflow per unit time (tol {cfg.tol}); the flow is probably unsteady (vortex "
            f"shedding): raise the viscosity or lower the velocity range"
        )
    c = solver.cell_velocity(state)  # (B, 2, NX, NY)
    p = solver.pressure(state)
    return c[:, 0].numpy(), c[:, 1].numpy(), p.numpy(), solid, t


def to_sample(
    cfg: SteadyGenConfig, ring: np.ndarray, speed: float, angle: float, u: np.ndarray, v: np.ndarray, p: np.ndarray, solid: np.ndarray
) -> SteadySample:
    """The fluid cells of one solved case as a point cloud."""
    dx, dy = cfg.length / cfg.nx, cfg.height / cfg.ny
    i, j = np.meshgrid(np.arange(cfg.nx), np.arange(cfg.ny), indexing="ij")
    fluid = ~solid
    pad = np.pad(solid, 1)
    touches = np.zeros_like(solid)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            touches |= pad[1 + di : 1 + di + cfg.nx, 1 + dj : 1 + dj + cfg.ny]
    surface = touches & fluid
    node_type = np.zeros(solid.shape, dtype=np.int64)
    node_type[(j == 0) | (j == cfg.ny - 1) | surface] = WALL
    node_type[i == 0] = INFLOW
    node_type[i == cfg.nx - 1] = OUTFLOW
    points = np.stack([(i + 0.5) * dx, (j + 0.5) * dy], -1)[fluid]  # (N, 2)
    walls = np.array([[[0.0, 0.0], [cfg.length, 0.0]], [[0.0, cfg.height], [cfg.length, cfg.height]]])
    return SteadySample(
        points=points,
        sdf=signed_distance(points, [ring], walls),
        fields=np.stack([u[fluid], v[fluid], p[fluid]], -1),
        node_type=node_type[fluid],
        surface=surface[fluid],
        params=np.array([speed, angle]),
        rings=[ring],
        walls=walls,
    )


def generate_steady(cfg: SteadyGenConfig, out: str | Path, on_batch: Callable[[int], None] | None = None) -> Path:
    """Solve every sample to its steady state and write the point-cloud store at `out`."""
    drawn = draw_samples(cfg)
    samples: list[SteadySample] = []
    for start in range(0, len(drawn), cfg.batch):
        chunk = drawn[start : start + cfg.batch]
        try:
            u, v, p, solid, _ = solve_batch(cfg, [r for r, _, _ in chunk], [s for _, s, _ in chunk])
        except InputError as e:
            raise InputError(f"samples {start}..{start + len(chunk) - 1}: {e}") from None
        samples += [to_sample(cfg, r, s, a, u[k], v[k], p[k], solid[k]) for k, (r, s, a) in enumerate(chunk)]
        if on_batch:
            on_batch(len(chunk))
    attrs = {
        "source": "surrogate generate steady",
        "viscosity": cfg.viscosity,
        "grid": f"{cfg.nx}x{cfg.ny}",
        "domain": [0.0, 0.0, cfg.length, cfg.height],
    }
    return write_steady_store(out, samples, list(FIELDS), list(PARAM_NAMES), attrs)
