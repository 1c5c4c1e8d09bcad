"""Our batched cavity solver against OpenFOAM's icoFoam, same grid, Re and simulated time.

Setup (documented, run by hand once): `apt-get install openfoam` (Debian's OpenFOAM v1912,
which ships the icoFoam cavity tutorial under /usr/share/doc/openfoam-examples).

The ensemble: `--cases` lid-driven cavities with Re from 100 to 400 (lid speed 1, side 0.1 m
in OpenFOAM's tutorial units, viscosity varied), run to 20 L/U, on the same N x N grid.
icoFoam runs the cases one after another (its tutorial setup: PISO, Courant number 0.64);
ours advances all cases in one batch. Reported: wall time of both, and for the Re = 100 and
Re = 400 members the max deviation from Ghia et al. (1982) along the centrelines.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table

from benchmarks.common import write_result
from surrogate.solvers.incompressible2d import centreline_profiles, lid_driven_cavity

TUTORIAL = Path("/usr/share/doc/openfoam-examples/examples/incompressible/icoFoam/cavity/cavity")
BASHRC = Path("/usr/share/openfoam/etc/bashrc")
GHIA = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ghia1982_cavity.csv"
MISPRINTS = {(400, "v", 0.9063)}  # see tests/solvers/test_incompressible2d.py
SIDE = 0.1  # the tutorial's cavity side in metres; lid speed 1 m/s


def ghia(re_: int) -> dict[str, np.ndarray]:
    rows = [r for r in csv.reader(line for line in GHIA.open() if not line.startswith("#"))][1:]
    return {
        c: np.array([(float(x), float(v)) for r, k, x, v in rows if int(r) == re_ and k == c and (re_, k, float(x)) not in MISPRINTS])
        for c in ("u", "v")
    }


def deviation(y: np.ndarray, u: np.ndarray, x: np.ndarray, v: np.ndarray, re_: int) -> float:
    """Max abs deviation from Ghia of centreline profiles given on increasing coordinates."""
    ref = ghia(re_)
    du = np.interp(ref["u"][:, 0], y, u) - ref["u"][:, 1]
    dv = np.interp(ref["v"][:, 0], x, v) - ref["v"][:, 1]
    return float(max(np.abs(du).max(), np.abs(dv).max()))


def foam_case(root: Path, n: int, nu: float, t_end: float, dt: float) -> Path:
    case = root / f"nu{nu:.6g}"
    shutil.copytree(TUTORIAL, case)
    mesh = case / "system" / "blockMeshDict"
    mesh.write_text(mesh.read_text().replace("(20 20 1)", f"({n} {n} 1)"))
    tp = case / "constant" / "transportProperties"
    tp.write_text(re.sub(r"nu\s+[^;]+;", f"nu              {nu};", tp.read_text()))
    cd = case / "system" / "controlDict"
    text = cd.read_text()
    n_steps = round(t_end / dt)
    for key, value in (("endTime", t_end), ("deltaT", dt), ("writeInterval", n_steps)):
        text = re.sub(rf"\n{key}\s+[^;]+;", f"\n{key}         {value};", text)
    cd.write_text(text)
    return case


def run_foam(case: Path) -> None:
    cmd = f"source {BASHRC} >/dev/null 2>&1; cd {case} && blockMesh > log.blockMesh 2>&1 && icoFoam > log.icoFoam 2>&1"
    subprocess.run(["bash", "-c", cmd], check=True)


def foam_profiles(case: Path, n: int) -> tuple[np.ndarray, ...]:
    """Centreline profiles of the last written time, in lid-speed and side units."""
    last = max(
        (d for d in case.iterdir() if d.is_dir() and re.fullmatch(r"[0-9.e+-]+", d.name) and float(d.name) > 0), key=lambda d: float(d.name)
    )
    text = (last / "U").read_text()
    body = text[text.index("internalField") :]
    vecs = np.array(re.findall(r"\(([-0-9.eE+]+) ([-0-9.eE+]+) [-0-9.eE+]+\)", body)[: n * n], dtype=float)
    u = vecs[:, 0].reshape(n, n)  # [row j (y), column i (x)]: OpenFOAM orders cells x fastest
    v = vecs[:, 1].reshape(n, n)
    centres = (np.arange(n) + 0.5) / n
    u_mid = 0.5 * (u[:, n // 2 - 1] + u[:, n // 2])  # x = 0.5
    v_mid = 0.5 * (v[n // 2 - 1, :] + v[n // 2, :])  # y = 0.5
    y = np.concatenate([[0.0], centres, [1.0]])
    return y, np.concatenate([[0.0], u_mid, [1.0]]), y, np.concatenate([[0.0], v_mid, [0.0]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=64)
    ap.add_argument("--grid", type=int, default=64)
    ap.add_argument("--t-end", type=float, default=20.0, help="simulated time in units of L/U")
    args = ap.parse_args()
    if not (TUTORIAL.is_dir() and BASHRC.is_file()):
        raise SystemExit("OpenFOAM not found: apt-get install openfoam (Debian's v1912 with its tutorials)")
    n = args.grid
    res = np.linspace(100, 400, args.cases)
    torch.set_num_threads(1)  # both solvers on one core: icoFoam runs serially
    # Ours: all cases in one batch, nondimensional (side 1, lid 1).
    solver = lid_driven_cavity(n, dt=args.t_end, max_substep=1.0)
    state = solver.init(torch.ones(args.cases), torch.tensor(1.0 / res))
    t0 = time.perf_counter()
    state = solver.step(state)
    ours_s = time.perf_counter() - t0
    y, u, x, v = (a.numpy() for a in centreline_profiles(solver, state))
    ours_dev = {r: deviation(y, u[i], x, v[i], r) for r, i in ((100, 0), (400, args.cases - 1))}
    # icoFoam: the same cases one after another, tutorial units (side 0.1 m, lid 1 m/s).
    dt = 0.64 * SIDE / n  # the tutorial's Courant number
    with tempfile.TemporaryDirectory() as tmp:
        cases = [foam_case(Path(tmp), n, float(SIDE / r), args.t_end * SIDE, dt) for r in res]
        t0 = time.perf_counter()
        for case in track(cases, description="icoFoam runs"):
            run_foam(case)
        foam_s = time.perf_counter() - t0
        foam_dev = {r: deviation(*foam_profiles(cases[i], n), r) for r, i in ((100, 0), (400, args.cases - 1))}
    table = Table(title=f"{args.cases} cavities, Re 100-400, {n}x{n}, t = {args.t_end} L/U, 1 CPU core each")
    for col in ("solver", "wall s", "Ghia dev Re=100", "Ghia dev Re=400"):
        table.add_column(col, justify="right")
    table.add_row("surrogate Incompressible2D (batched)", f"{ours_s:.1f}", f"{ours_dev[100]:.4f}", f"{ours_dev[400]:.4f}")
    table.add_row("OpenFOAM icoFoam (sequential)", f"{foam_s:.1f}", f"{foam_dev[100]:.4f}", f"{foam_dev[400]:.4f}")
    table.caption = f"icoFoam / ours wall time = {foam_s / ours_s:.2f}"
    Console().print(table)
    path = write_result(
        "solver_vs_openfoam",
        {
            "sizes": vars(args),
            "wall_s": {"ours_batched": ours_s, "icofoam_sequential": foam_s},
            "ratio_icofoam_over_ours": foam_s / ours_s,
            "ghia_max_deviation": {"ours": ours_dev, "icofoam": foam_dev},
            "openfoam": "Debian openfoam 1912.200626, icoFoam tutorial cavity (PISO), deltaT from Courant 0.64",
            "target": "ours faster than sequential icoFoam at equal accuracy",
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
