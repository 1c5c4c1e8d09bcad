"""`surrogate` command line: each command parses its arguments, calls one library function
and prints the result. Bad input ends with a one-line message and exit code 2."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from surrogate.errors import InputError

T = TypeVar("T")


# rich_markup_mode None: help texts are plain text, so "[u v w p]" stays as written
app = typer.Typer(
    help="Neural-operator surrogates of fluid flows: generate or convert data, train, roll out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
generate_app = typer.Typer(
    help="Run a built-in solver ensemble and write the canonical store.", no_args_is_help=True, rich_markup_mode=None
)
convert_app = typer.Typer(help="Convert external data into the canonical store.", no_args_is_help=True, rich_markup_mode=None)
export_app = typer.Typer(help="Write a store in another tool's layout.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(generate_app, name="generate")
app.add_typer(convert_app, name="convert")
app.add_typer(export_app, name="export")
console = Console(soft_wrap=True)
if not console.is_terminal:  # piped or logged: tables keep their columns instead of being cut at 80
    console.width = 160


def _fail(e: Exception) -> NoReturn:
    console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _run(job: Callable[[], T]) -> T:
    """Run a library call; bad input ends the command with its message and exit code 2."""
    try:
        return job()
    except InputError as e:
        _fail(e)


def _report(result: Any) -> None:
    """The end of a training command: why it stopped, the held-out table, where things are."""
    from surrogate.training.progress import minutes

    console.print(f"training ended: {result.train.stopped}; {minutes(result.train.train_s)} of training")
    for text in result.warnings:
        console.print(f"[yellow]note:[/] {text}", highlight=False)
    if result.results:  # grid: per-step rollout errors
        from surrogate.evaluation.report import summary_table

        console.print(summary_table(result.results))
        if result.long_rollout:
            from surrogate.evaluation.long_rollout import long_rollout_table

            console.print(long_rollout_table(result.long_rollout))
    elif "relative_l2" in result.metrics:
        _steady_table(result.metrics)
    else:
        _mesh_table(result.metrics)
    console.print(f"best checkpoint: {result.train.best_checkpoint}\nreport: {result.report_dir / 'index.html'}")
    stream_metrics = result.report_dir.parent / "stream_metrics.json"
    if stream_metrics.is_file():
        console.print(f"stream metrics: {stream_metrics}")


def _mesh_table(metrics: dict[str, Any]) -> None:
    first = next(iter(metrics.values()))
    shown = [k for k in first if k not in ("steps", "in_sample")]
    where = "in-sample (no held-out data)" if first["in_sample"] else "held-out"
    table = Table("model", *shown, title=f"{where} rollouts ({first['steps']:.3g} steps on average)")
    for name, m in metrics.items():
        table.add_row(name, *(f"{m[k]:.4g}" for k in shown))
    console.print(table)


def _steady_table(m: dict[str, Any]) -> None:
    table = Table("points", *m["relative_l2"], "mean", title=f"{m['model']}: relative L2 on {m['held_out_samples']} held-out geometries")
    for label, key in (
        (f"training resolution ({m['train_points_fraction']:.0%})", "relative_l2_train_resolution"),
        ("all (super-resolution)", "relative_l2"),
    ):
        table.add_row(label, *(f"{v:.4f}" for v in m[key].values()), f"{m[key + '_mean']:.4f}")
    console.print(table)
    console.print(
        f"surface pressure relative L2: {m['surface_pressure_relative_l2']:.4f}; constant-mean baseline: "
        f"{m['constant_mean_relative_l2_mean']:.4f}; inference {m['inference_s_per_sample'] * 1e3:.1f} ms per sample"
    )


def _progress(description: str, total: int, work: Callable[[Callable[[int], None]], T], interval_s: float = 30.0) -> T:
    """Run work(advance) under a progress bar of `total` units; when output is not a terminal
    (a log file, CI), a line every `interval_s` seconds with the expected total time."""
    import time

    from surrogate.training.progress import minutes

    if console.is_terminal:
        with Progress(console=console) as bar:
            task = bar.add_task(description, total=total)
            return work(lambda n=1: bar.advance(task, n))
    start = last = time.monotonic()
    done = 0

    def advance(n: int = 1) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last >= interval_s:
            last = now
            expected = (now - start) / done * total
            console.print(f"{description}: {done}/{total} elapsed {minutes(now - start)} of about {minutes(expected)}", highlight=False)

    result = work(advance)
    console.print(f"{description}: {total}/{total} in {minutes(time.monotonic() - start)}", highlight=False)
    return result


@generate_app.command("ns2d")
def generate_ns2d_cmd(
    out: Annotated[Path, typer.Option(help="Output store (.h5); written atomically.")] = Path("data/ns2d.h5"),
    n_trajectories: Annotated[int, typer.Option(help="Independent GRF initial conditions.")] = 64,
    n_steps: Annotated[int, typer.Option(help="Stored time steps per trajectory.")] = 40,
    dt: Annotated[float, typer.Option(help="Physical time between stored steps.")] = 0.25,
    burn_in: Annotated[int, typer.Option(help="Intervals simulated before the first stored step.")] = 0,
    resolution: Annotated[int, typer.Option(help="Grid points per side of the unit square.")] = 64,
    viscosity: Annotated[float, typer.Option(help="Kinematic viscosity nu (Li et al. use 1e-3).")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed of the random initial fields and of the split.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Trajectories simulated together in one tensor.")] = 32,
    device: Annotated[str, typer.Option(help="torch device of the solver: cpu, cuda, cuda:N or auto (CUDA when present).")] = "cpu",
) -> None:
    """2D Navier-Stokes (vorticity form, periodic) from Gaussian random fields, as in the FNO benchmark."""
    from surrogate.generate import NS2DDataConfig, generate_ns2d, ns2d_solver_steps

    cfg = _run(lambda: NS2DDataConfig(resolution, n_trajectories, n_steps, dt, burn_in, viscosity, seed, batch_size, device=device))
    path = _run(lambda: _progress("solving NS2D", ns2d_solver_steps(cfg), lambda advance: generate_ns2d(cfg, out, on_step=advance)))
    console.print(f"wrote {path} ({n_trajectories} trajectories x {n_steps} steps, {resolution}^2)")


@generate_app.command("gpme")
def generate_gpme_cmd(
    case: Annotated[str, typer.Option(help="heat (constant k), pme (k = u^m) or stefan (k a step in u).")] = "heat",
    out: Annotated[Path, typer.Option(help="Output store (.h5); written atomically.")] = Path("data/gpme.h5"),
    n_trajectories: Annotated[int, typer.Option(help="Parameters drawn from ProbConserv's range.")] = 32,
    n_cells: Annotated[int, typer.Option(help="Finite-volume cells.")] = 128,
    n_steps: Annotated[int, typer.Option(help="Stored time steps per trajectory.")] = 21,
    dt: Annotated[float, typer.Option(help="Physical time between stored steps.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the parameters and of the split.")] = 0,
) -> None:
    """1D generalized porous medium equation (ProbConserv's heat, porous-medium and Stefan cases)."""
    from surrogate.generate import GPMEDataConfig, generate_gpme

    cfg = _run(lambda: GPMEDataConfig(case, n_trajectories, n_cells, n_steps, dt, seed=seed))
    path = _run(lambda: _progress(f"solving GPME {case}", n_steps - 1, lambda advance: generate_gpme(cfg, out, on_step=advance)))
    console.print(f"wrote {path} ({n_trajectories} trajectories x {n_steps} steps, {n_cells} cells)")


@generate_app.command("cfdbench")
def generate_cfdbench_cmd(
    problem: Annotated[str, typer.Option(help="cavity, tube, dam or cylinder.")] = "cavity",
    subset: Annotated[str, typer.Option(help="prop (density, viscosity), bc (velocity) or geo (geometry).")] = "prop",
    out: Annotated[Path, typer.Option(help="Folder for CFDBench's layout <out>/<problem>/<subset>/caseNNNN.")] = Path("data/cfdbench"),
    store: Annotated[Path, typer.Option(help="The canonical store written from the same cases.")] = Path("data/cfdbench.h5"),
    n_values: Annotated[int, typer.Option(help="Values per varied parameter (prop and geo vary two: n^2 cases).")] = 5,
    resolution: Annotated[
        int,
        typer.Option(
            help="Solver cells per side, a multiple of 64 (averaged down to 64); 0: the smallest that resolves every case "
            "of the sweep (64 for most; cylinder bc 128, cylinder prop 256)."
        ),
    ] = 0,
    n_frames: Annotated[int, typer.Option(help="Frames per case, 0.1 s apart.")] = 50,
    scheduler: Annotated[str, typer.Option(help="Dask scheduler address; a LocalCluster when empty.")] = "",
    workers: Annotated[int, typer.Option(help="Worker processes of the LocalCluster.")] = 2,
) -> None:
    """A CFDBench parameter sweep run as a Dask ensemble, written as CFDBench folders and as a store."""
    from surrogate.generate.cfdbench import CFDBenchGenConfig, generate_cfdbench, sweep

    cfg = CFDBenchGenConfig(problem, subset, n_values, resolution, n_frames, scheduler, workers)
    n_cases = _run(lambda: len(sweep(problem, subset, n_values)))
    result = _run(
        lambda: _progress(
            f"{problem}/{subset} cases", n_cases, lambda advance: generate_cfdbench(cfg, out, store, on_case=lambda i, ok: advance())
        )
    )
    table = Table(title=f"CFDBench {problem}/{subset}")
    table.add_column("cases written", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("solver grid", justify="right")
    table.add_row(str(result.written), str(len(result.failed)), f"{result.resolution}x{result.resolution}")
    console.print(table)
    for i, reason in result.failed:
        console.print(f"[red]case{i:04d} failed twice:[/] {reason}", highlight=False)
    console.print(f"folders: {result.folder}\nstore: {result.store}")


@generate_app.command("steady")
def generate_steady_cmd(
    out: Annotated[Path, typer.Option(help="The steady point-cloud store to write (with its .xdmf sidecar).")] = Path("data/steady.h5"),
    n_samples: Annotated[int, typer.Option(help="Geometries (one obstacle each).")] = 32,
    nx: Annotated[int, typer.Option(help="Solver cells along the channel.")] = 64,
    ny: Annotated[int, typer.Option(help="Solver cells across the channel.")] = 32,
    shapes: Annotated[str, typer.Option(help="Obstacle families, comma separated: ellipse, naca.")] = "ellipse,naca",
    angle: Annotated[str, typer.Option(help="Angle-of-attack range in degrees, LO,HI.")] = "-20,20",
    velocity: Annotated[str, typer.Option(help="Mean inflow speed range, LO,HI.")] = "0.5,1.5",
    viscosity: Annotated[float, typer.Option(help="Kinematic viscosity (the chord is 0.35: Re = speed * 0.35 / viscosity).")] = 0.02,
    seed: Annotated[int, typer.Option(help="Seed of the random shapes, angles and speeds.")] = 0,
) -> None:
    """Steady channel flows around random ellipses and NACA airfoils, solved to steady state,
    written as point clouds with u, v, p, the SDF and the obstacle boundaries."""
    from surrogate.generate.steady import SteadyGenConfig, generate_steady

    def pair(text: str, name: str) -> list[float]:
        try:
            lo, hi = (float(x) for x in text.split(","))
        except ValueError:
            raise InputError(f"--{name} {text!r}: expected two numbers LO,HI") from None
        return [lo, hi]

    cfg = _run(
        lambda: SteadyGenConfig(
            n_samples,
            nx,
            ny,
            shapes=[x.strip() for x in shapes.split(",") if x.strip()],
            angle=pair(angle, "angle"),
            velocity=pair(velocity, "velocity"),
            viscosity=viscosity,
            seed=seed,
        )
    )
    path = _run(lambda: _progress("solving to steady state", n_samples, lambda advance: generate_steady(cfg, out, on_batch=advance)))
    console.print(f"wrote {path} ({n_samples} samples on a {nx} x {ny} grid)")


@generate_app.command("channel")
def generate_channel_cmd(
    out: Annotated[Path, typer.Option(help="The channel store to write (canonical grid store).")] = Path("data/channel.h5"),
    re_tau: Annotated[float, typer.Option(help="Friction Reynolds number (pressure drive: nu = 1 / Re_tau in h, u_tau units).")] = 180.0,
    nx: Annotated[int, typer.Option(help="Streamwise Fourier points.")] = 16,
    ny: Annotated[int, typer.Option(help="Wall-normal cells (tanh-stretched); the first cell centre must sit at y+ <= 2.")] = 24,
    nz: Annotated[int, typer.Option(help="Spanwise Fourier points.")] = 16,
    closure: Annotated[str, typer.Option(help="SGS model: dsm (dynamic Smagorinsky), wale or none.")] = "dsm",
    drive: Annotated[
        str,
        typer.Option(
            help="pressure (-dP/dx fixed: Re_tau exact on average) or flow_rate (bulk velocity "
            "fixed at its initial value, a conserved quantity a surrogate can be held to)."
        ),
    ] = "pressure",
    n_trajectories: Annotated[int, typer.Option(help="Independent trajectories (random initial disturbances).")] = 4,
    n_snapshots: Annotated[int, typer.Option(help="Stored snapshots per trajectory.")] = 40,
    dt: Annotated[float, typer.Option(help="Interval between snapshots, in h / u_tau.")] = 0.1,
    spinup: Annotated[float, typer.Option(help="Simulated and dropped before the first snapshot, in h / u_tau.")] = 5.0,
    seed: Annotated[int, typer.Option(help="Seed of the initial disturbances.")] = 0,
) -> None:
    """Turbulent channel flow from the built-in LES (box 2 pi x 2 x pi, periodic in x and z), the
    first SPINUP dropped, written in the layout `surrogate convert channel` writes."""
    from surrogate.generate.channel import ChannelGenConfig, generate_channel

    cfg = _run(
        lambda: ChannelGenConfig(
            nx,
            ny,
            nz,
            re_tau=re_tau,
            closure=closure,
            drive=drive,
            n_trajectories=n_trajectories,
            n_snapshots=n_snapshots,
            dt=dt,
            spinup=spinup,
            seed=seed,
        )
    )
    path = _run(
        lambda: _progress(f"channel LES at Re_tau = {re_tau:g}", cfg.steps(), lambda advance: generate_channel(cfg, out, on_step=advance))
    )
    console.print(f"wrote {path} ({n_trajectories} trajectories x {n_snapshots} snapshots on a {nx} x {ny} x {nz} grid)")


@generate_app.command("cylinder")
def generate_cylinder_cmd(
    out: Annotated[Path, typer.Option(help="The mesh store to write (with its .xdmf sidecar).")] = Path("data/cylinder_mesh.h5"),
    n_cylinder: Annotated[int, typer.Option(help="Mesh edges on the cylinder (at least 19 at Re = 100).")] = 24,
    dt: Annotated[float, typer.Option(help="Solver time step.")] = 0.01,
    spinup: Annotated[float, typer.Option(help="Time simulated from rest before the first frame (shedding starts near 3).")] = 5.0,
    n_frames: Annotated[int, typer.Option(help="Frames kept.")] = 60,
    interval: Annotated[float, typer.Option(help="Time between frames (the shedding period is about 0.33).")] = 0.02,
) -> None:
    """Vortex shedding behind a cylinder at Re = 100 (the DFG 2D-2 channel) on its triangle mesh,
    by the finite-element solver: velocity and pressure frames as a mesh store for mesh models."""
    from surrogate.generate.cylinder import CylinderGenConfig, generate_cylinder

    cfg = _run(lambda: CylinderGenConfig(n_cylinder, dt, spinup, n_frames, interval))
    path = _run(lambda: _progress("cylinder flow", cfg.solver_steps(), lambda advance: generate_cylinder(cfg, out, on_step=advance)))
    console.print(f"wrote {path} ({n_frames} frames {interval:g} apart after {spinup:g} of spin-up)")


@convert_app.command("well")
def convert_well_cmd(
    src: Annotated[Path, typer.Argument(help="A Well dataset folder (SRC/data/{train,valid,test}/*.hdf5) or one Well .hdf5 file.")],
    dst: Annotated[Path, typer.Argument(help="Output store (.h5); written atomically.")],
) -> None:
    """A dataset of The Well (its split folders, every file on one grid) -> one store whose splits
    are the folders. A single file needs no conversion: data.path may name it directly."""
    from surrogate.export.well import import_well

    path, counts = _run(lambda: import_well(src, dst))
    console.print(f"wrote {path}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " trajectories")


@convert_app.command("cfdbench")
def convert_cfdbench_cmd(
    src: Annotated[Path, typer.Argument(help="CFDBench problem folder, e.g. data/cfdbench/cavity")],
    dst: Annotated[Path, typer.Argument(help="Output store (.h5); written atomically.")],
    subsets: Annotated[str, typer.Option(help="Subsets in CFDBench order, comma separated.")] = "prop,bc,geo",
    seed: Annotated[int, typer.Option(help="Seed of CFDBench's case shuffle (0 as published).")] = 0,
) -> None:
    """CFDBench cases ({prop,bc,geo}/caseNNNN/{u,v}.npy + case.json) with CFDBench's padding, mask and split."""
    from surrogate.datasets.cfdbench import convert_cfdbench

    try:
        summary = convert_cfdbench(src, dst, tuple(s.strip() for s in subsets.split(",") if s.strip()), seed)
    except InputError as e:
        _fail(e)
    console.print(f"wrote {dst}: {summary}")


@convert_app.command("mesh")
def convert_mesh_cmd(
    src: Annotated[
        Path,
        typer.Argument(help="A folder of .vtu steps, an .xdmf collection, a MeshGraphNet .h5, an OpenFOAM case or foamToVTK output."),
    ],
    dst: Annotated[Path, typer.Argument(help="Output mesh store (.h5) with its .xdmf sidecar; written atomically.")],
    format_: Annotated[str, typer.Option("--format", help="vtu, xdmf, meshgraphnet, openfoam or foamtovtk.")] = "vtu",
    fields: Annotated[Optional[str], typer.Option(help="Point fields to keep, comma separated (default: all).")] = None,
    velocity: Annotated[
        Optional[str],
        typer.Option(help="The velocity field: OpenFOAM's boundary conditions of it type the patches; elsewhere it infers node types."),
    ] = None,
    dt: Annotated[Optional[float], typer.Option(help="Time between steps of a series whose files carry no time.")] = None,
) -> None:
    """Unstructured-mesh time series -> the canonical mesh store (geometry/, t0_fields/, t1_fields/)
    plus an XDMF sidecar that ParaView opens.

    Node types (interior, wall, inflow, outflow) come from the file; in an OpenFOAM case (or
    foamToVTK output inside one) from its patches and their velocity boundary conditions
    (default field U); otherwise they are inferred from the boundary faces and the flow through
    them (default field velocity). A 2D OpenFOAM case (empty front and back) becomes a 2D mesh.
    Step times come from the files (.series, TimeValue, OpenFOAM time directories) or --dt."""
    from surrogate.datasets.mesh_store import MeshStore, convert_mesh

    chosen = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    written = _run(lambda: convert_mesh(format_, src, dst, chosen, velocity, dt))
    table = Table("store", "nodes", "cells", "trajectories", "steps", "channels", "wall/inflow/outflow nodes")
    for path in written:
        st = MeshStore(path)
        counts = [int((st.node_type == k).sum()) for k in (1, 2, 3)]
        table.add_row(
            str(path),
            str(len(st.points)),
            str(sum(len(c) for c in st.cells.values())),
            str(st.n_trajectories),
            str(st.n_steps),
            ", ".join(st.channel_names),
            "/".join(map(str, counts)),
        )
    console.print(table)
    for note in dict.fromkeys(n for path in written for n in MeshStore(path).notes):
        console.print(f"note: {note}")


@convert_app.command("steady")
def convert_steady_cmd(
    src: Annotated[Path, typer.Argument(help="A folder of .vtu/.xdmf files, one steady solution (one geometry) each.")],
    dst: Annotated[Path, typer.Argument(help="Output steady point-cloud store (.h5) with its .xdmf sidecar; written atomically.")],
    fields: Annotated[str, typer.Option(help="Point fields to learn, comma separated (vectors are split into _x, _y).")] = "U,p",
    sdf_field: Annotated[str, typer.Option(help="The point field holding the signed distance to the walls.")] = "implicit_distance",
    params: Annotated[
        Optional[Path], typer.Option(help="JSON table {file stem: {parameter: value}}; default: each file's field data.")
    ] = None,
    node_type_field: Annotated[
        Optional[str], typer.Option(help="A point field with node types; default: inferred from the boundary.")
    ] = None,
    velocity: Annotated[str, typer.Option(help="The velocity field used to infer node types.")] = "U",
) -> None:
    """Steady samples on unstructured 2D meshes (AirfRANS-like VTU) -> the steady point-cloud store.
    Obstacle boundaries are traced from the mesh; open or self-intersecting ones are refused."""
    from surrogate.datasets.steady_mesh import convert_steady
    from surrogate.datasets.steady_store import SteadyStore

    chosen = [f.strip() for f in fields.split(",") if f.strip()]
    path = _run(lambda: convert_steady(src, dst, chosen, sdf_field, params, None, node_type_field, velocity))
    st = SteadyStore(path)
    table = Table("store", "samples", "points (first)", "channels", "parameters")
    table.add_row(str(path), str(len(st)), str(len(st.sample(0).points)), ", ".join(st.field_names), ", ".join(st.param_names))
    console.print(table)


@convert_app.command("channel")
def convert_channel_cmd(
    src: Annotated[Path, typer.Argument(help="IFactFormer-m .npy (traj, snap, Nx, Ny, Nz, [u v w p]) or a DNS cutout .h5.")],
    dst: Annotated[Path, typer.Argument(help="Output grid store (.h5); written atomically.")],
    layout: Annotated[str, typer.Option(help="factformer or dns.")] = "factformer",
    y: Annotated[
        Optional[Path],
        typer.Option(
            help="The y grid (.npy) of a factformer array; default y.npy or <stem>_y.npy beside it, else the authors' linspace(0, 2, Ny)."
        ),
    ] = None,
    dt: Annotated[
        Optional[float], typer.Option(help="Time between snapshots in flow units; required where the file states none (the .npy layout).")
    ] = None,
    re_tau: Annotated[Optional[float], typer.Option(help="Friction Reynolds number, stored as a parameter.")] = None,
    les: Annotated[Optional[str], typer.Option(help="Filter to an LES grid NX,NY,NZ (Chebyshev y points).")] = None,
    les_filter: Annotated[str, typer.Option(help="box or spectral filter in x and z.")] = "box",
) -> None:
    """Turbulent channel arrays -> the canonical grid store (velocity vector + pressure; x, z
    periodic, y walls), optionally filtered to a coarse LES grid first. Channels u, v, w, p in
    that order; splits as IFactFormer-m's: the last trajectory tests, the first 80% of the
    others train, the rest validate."""
    import numpy as np

    from surrogate.datasets.channel import chebyshev_y, filter_to_les, read_dns_h5, read_factformer_npy, write_channel_store

    def job() -> tuple[Path, str]:
        if layout not in ("factformer", "dns"):
            raise InputError(f"--layout {layout!r}: expected factformer or dns")
        if layout == "factformer":
            data = read_factformer_npy(src, np.load(y) if y else None, dt=dt)
        else:
            data = read_dns_h5(src, dt=dt)
        if les:
            try:
                nx, ny, nz = (int(v) for v in les.split(","))
            except ValueError:
                raise InputError(f"--les {les!r}: expected three integers NX,NY,NZ") from None
            data = filter_to_les(data, nx, nz, data.y[0] + (data.y[-1] - data.y[0]) * chebyshev_y(ny, 1.0), les_filter)
        return write_channel_store(data, dst, Path(src).stem, re_tau), data.y_source

    path, y_source = _run(job)
    console.print(f"wrote {path} (y: {y_source})")


@export_app.command("well")
def export_well_cmd(
    store: Annotated[Path, typer.Argument(help="A grid store (.h5).")],
    out: Annotated[Path, typer.Argument(help="The dataset folder to write: OUT/data/{train,valid,test}/*.hdf5 and OUT/stats.yaml.")],
) -> None:
    """A grid store as a dataset folder in The Well's layout, one file per split plus stats.yaml,
    so that The Well's loader (WellDataset(path=OUT, well_split_name=...)) sees our split."""
    from surrogate.export.well import export_well

    path = _run(lambda: export_well(store, out))
    console.print(f"wrote {path}/data/{{train,valid,test}} and {path}/stats.yaml")


@app.command("train")
def train_cmd(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (data, model, train, eval, out_dir).")],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a key: --set train.epochs=3")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue from this last.pt checkpoint.")] = None,
    nproc: Annotated[int, typer.Option(help="Training processes (DistributedDataParallel; gloo on CPU, NCCL on GPU).")] = 1,
) -> None:
    """Train a surrogate, then roll it out on held-out data beside persistence.

    The model's family picks the task (grid, mesh or steady model); `data.source` picks where a
    grid model's data comes from: `store` (default, the store at data.path) or `stream` (the
    solver ensemble of the `stream` section, trained on while it runs; as `surrogate online`).
    `--nproc N` trains with N local processes, each on its shard of every global batch
    (data.batch_size is the global batch); plain `torchrun ... -m surrogate train` works too.
    """
    from surrogate.tasks import train_from_config

    try:
        result = train_from_config(config, set_, resume, nproc, progress=True)
    except InputError as e:
        _fail(e)
    if result is not None:  # None: a non-zero torchrun rank; rank 0 reports
        _report(result)


@app.command("online")
def online_cmd(
    config: Annotated[
        Optional[Path], typer.Argument(help="Online YAML (stream, model, train, ...); the built-in default when omitted.")
    ] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a key: --set stream.n_simulations=128")] = None,
    resume: Annotated[
        Optional[Path],
        typer.Option(
            help="Continue from OUT_DIR/last.pt: model, optimizer and the stream "
            "server's buffer, seen steps and finished simulations (not rerun)."
        ),
    ] = None,
    nproc: Annotated[int, typer.Option(help="Training processes (gloo, DDP), each with its own stream server and buffer.")] = 1,
) -> None:
    """Train while solvers run: an ensemble on Dask streams over ZeroMQ into a buffer the Trainer
    draws from; no training data is written to disk. `stream.solver` says what runs: ns2d
    (built-in), command (your executable, `stream.command` with {parameter} placeholders),
    openfoam (`stream.case` as a template; a mesh model trains on it) or attach (solvers you
    start yourself connect to the addresses in OUT_DIR/stream.json). Then the model is rolled
    out on held-out simulations beside persistence."""
    from surrogate.tasks import train_from_config

    try:
        result = train_from_config(config, set_, resume, nproc, progress=True, stream=True)
    except InputError as e:
        _fail(e)
    assert result is not None
    _report(result)


@app.command("watch")
def watch_cmd(
    directory: Annotated[Path, typer.Argument(help="The solver's output directory (an OpenFOAM case, or a folder of .vtu/.h5 steps).")],
    data: Annotated[str, typer.Option(help="The stream server's data address, e.g. tcp://127.0.0.1:5555.")],
    control: Annotated[str, typer.Option(help="The stream server's control address.")],
    kind: Annotated[str, typer.Option(help="vtu, hdf5 or openfoam.")] = "vtu",
    sim_id: Annotated[str, typer.Option(help="Simulation id the steps are sent under.")] = "watched",
    field: Annotated[Optional[list[str]], typer.Option(help="A field to send (repeat); all float fields when omitted.")] = None,
    dt: Annotated[float, typer.Option(help="Time per index step of a vtu/hdf5 series.")] = 1.0,
    idle_s: Annotated[float, typer.Option(help="Stop when no new step has appeared for this long.")] = 60.0,
) -> None:
    """Stream a running solver that was not instrumented: follow its output directory and send
    each step once it is complete (OpenFOAM time directories, a growing VTU series, HDF5 files)."""
    import time

    from surrogate.online.client import OnlineClient
    from surrogate.online.watch import DirectoryWatcher

    try:
        watcher = DirectoryWatcher(directory, kind, None, field)  # checks the arguments before connecting
        with OnlineClient(data, control, sim_id) as client:
            watcher.client = client
            last = [watcher.sent, time.monotonic()]

            def idle() -> bool:
                if watcher.sent != last[0]:
                    last[:] = [watcher.sent, time.monotonic()]
                return time.monotonic() - last[1] > idle_s

            with Progress(console=console) as bar:
                task = bar.add_task(f"watching {directory} (steps sent)", total=None)
                sent = watcher.run(lambda: bool(bar.update(task, completed=watcher.sent)) or idle())
    except InputError as e:
        _fail(e)
    except ConnectionError as e:
        _fail(
            InputError(
                f"{e}: is a stream server listening there? Start the receiving side first: a "
                "`surrogate.online.server.StreamServer(buffer)` in the training process, whose "
                "`data_address` and `control_address` are what --data and --control take"
            )
        )
    console.print(f"sent {sent} steps of {directory} as {sim_id!r}")


@app.command("rollout")
def rollout_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by `surrogate train` (grid, mesh or steady model).")],
    data: Annotated[Path, typer.Argument(help="A store of the checkpoint's kind with the channels the model was trained on.")],
    split: Annotated[str, typer.Option(help="Trajectories to roll out on: train, valid or test.")] = "test",
    steps: Annotated[int, typer.Option(help="Rollout steps (capped by the stored length).")] = 20,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("runs/rollout"),
    long_steps: Annotated[
        int,
        typer.Option(
            help="Also roll out this many steps past the stored truth: energy stability, "
            "and for channel stores U+, rms, Reynolds stress and spectra against the solver's."
        ),
    ] = 0,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model's operator before the rollout.")] = False,
) -> None:
    """Roll a trained model out against stored truth beside persistence, and write its report.
    Grid checkpoints roll out on a store's split; mesh and steady checkpoints on the part of a
    mesh or steady store that their training config holds out."""
    from surrogate.evaluation.long_rollout import long_rollout_table
    from surrogate.evaluation.report import summary_table
    from surrogate.tasks import rollout_checkpoint

    try:
        result = rollout_checkpoint(checkpoint, data, split, steps, out, long_steps, compile)
    except InputError as e:
        _fail(e)
    if result.results:
        console.print(summary_table(result.results))
    elif "relative_l2" in result.metrics:
        _steady_table(result.metrics)
    else:
        _mesh_table(result.metrics)
    if result.long_rollout:
        console.print(long_rollout_table(result.long_rollout))
    for text in result.notes:
        console.print(f"[yellow]note:[/] {text}", highlight=False)
    console.print(f"report: {result.report_dir / 'index.html'}")


@app.command("info")
def info_cmd(
    file: Annotated[
        Path, typer.Argument(help="A store (.h5), or a Well dataset folder (NAME/data/{train,valid,test}/), to describe and validate.")
    ],
    scan: Annotated[bool, typer.Option(help="Also read every value to find NaN/Inf.")] = True,
) -> None:
    """Print a store's schema, or what is wrong with it (exit code 2)."""
    from surrogate.datasets.validate import describe, validate_store
    from surrogate.datasets.well_folder import link_folder, well_files

    files = _run(lambda: well_files(file)) if file.is_dir() else {"train": [file]}
    problems = [f"{p}: {q}" if file.is_dir() else q for ps in files.values() for p in ps for q in validate_store(p, scan_values=scan)]
    if problems:
        console.print(f"[bold red]{file} is not a valid store:[/]")
        for p in problems:
            console.print(f"  - {p}", highlight=False)
        raise typer.Exit(2)
    table = Table(title=str(file), show_header=False)
    if file.is_dir():
        linked = _run(lambda: link_folder(file))
        table.add_row("Well dataset folder", ", ".join(f"{split}: {len(ps)} file(s)" for split, ps in files.items()))
        table.add_row("normalization", "stats.yaml" if (file / "stats.yaml").is_file() else "computed over the train split")
        table.add_row("linked store (no copy)", str(linked))
        file = linked
    for k, v in describe(file).items():
        table.add_row(k, str(v))
    console.print(table)


def main() -> None:
    """The `surrogate` command. OpenMP threads that spin 300k iterations before sleeping collapse
    when other work shares the cores (a demo FNO step took 0.29 s alone and 2.0 s beside two busy
    processes on 2 cores; with 100k spins, 0.29 s in both cases): the default is set here, before
    torch and its libgomp load, for the command's own process only."""
    os.environ.setdefault("GOMP_SPINCOUNT", "100000")
    app()
