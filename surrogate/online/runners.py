"""What runs for one simulation of an ensemble, in a Dask worker, streaming to the server.

    (the built-in solvers: `surrogate.online.builtin.run_builtin`)
    command   the user's executable: the command line is formatted with the simulation's
              parameters ({nu}, {simulation_id}, ...) and run with the stream's addresses
              and the simulation id in its environment (SURROGATE_DATA, SURROGATE_CONTROL,
              SURROGATE_SIMULATION_ID, SURROGATE_PARAM_<NAME> per parameter, and the CURVE
              keys of `surrogate.online.curve` when the server needs them); it streams
              through the C or the Python client itself
    openfoam  an OpenFOAM case used as a template: copied (foamlib), the parameters written
              into its dictionaries, meshed (blockMesh when it has a blockMeshDict) and run
              (the controlDict's application) while the directory watcher streams each
              completed time directory

Each returns its simulation id; a failure raises with the command and the tail of its output,
so Dask's retry and the launcher's log say what went wrong.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from surrogate.errors import InputError
from surrogate.online.curve import ClientKeys

FOAM_BASHRC = "/usr/share/openfoam/etc/bashrc"  # Debian's OpenFOAM


def format_command(command: str, sim_id: str, params: dict[str, float]) -> str:
    """`command` with {name} replaced by each parameter (repr, full precision) and
    {simulation_id}; an unknown placeholder is a configuration error naming it."""
    try:
        return command.format(simulation_id=sim_id, **{k: repr(float(v)) for k, v in params.items()})
    except (KeyError, IndexError) as e:
        raise InputError(f"stream.command {command!r}: placeholder {e} is neither a parameter {sorted(params)} nor simulation_id") from None
    except ValueError as e:
        raise InputError(f"stream.command {command!r}: {e}") from None


def stream_env(data: str, control: str, sim_id: str, params: dict[str, float], keys: ClientKeys | None) -> dict[str, str]:
    """The environment a user's solver reads the stream's addresses, its parameters and (a
    server beyond 127.0.0.1) its CURVE keys from."""
    env = {"SURROGATE_DATA": data, "SURROGATE_CONTROL": control, "SURROGATE_SIMULATION_ID": sim_id}
    env.update({f"SURROGATE_PARAM_{k.upper()}": repr(float(v)) for k, v in params.items()})
    return {**env, **(keys.env() if keys is not None else {})}


def run_command(data: str, control: str, sim_id: str, params: dict[str, float], keys: ClientKeys | None, command: str, workdir: str) -> str:
    """The user's executable for one simulation, in `workdir` (the run's folder)."""
    line = format_command(command, sim_id, params)
    env = {**os.environ, **stream_env(data, control, sim_id, params, keys)}
    out = subprocess.run(line, shell=True, cwd=workdir or None, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stdout[-1000:] + out.stderr[-1000:]).strip()
        raise RuntimeError(f"simulation {sim_id}: `{line}` exited with status {out.returncode}: {tail}")
    return sim_id


def set_entries(case: Path, entries: dict[str, str], params: dict[str, float]) -> None:
    """Write each parameter into its dictionary entry, `FILE:KEY[/SUBKEY...]` relative to the
    case (e.g. `constant/transportProperties:nu`), with foamlib."""
    from foamlib import FoamFile

    for name, where in entries.items():
        file, _, key = where.partition(":")
        if not key or not (case / file).is_file():
            raise InputError(f"stream.dictionaries.{name} {where!r}: expected FILE:KEY with FILE a dictionary of the case {case}")
        FoamFile(case / file)[tuple(key.split("/"))] = float(params[name])


def foam_shell(case: Path, commands: str, bashrc: str) -> subprocess.Popen[str]:
    """`commands` run by bash in `case` with OpenFOAM's environment (`bashrc` sourced when set)."""
    source = f"source {shlex.quote(bashrc)} >/dev/null 2>&1; " if bashrc else ""
    return subprocess.Popen(["bash", "-c", f"{source}cd {shlex.quote(str(case))} && {commands}"], text=True)


def copy_case(template: str | Path, case: Path, bashrc: str, mesh: bool) -> None:
    """A fresh copy of the template at `case` (foamlib), meshed with blockMesh when `mesh` and
    the template has a blockMeshDict but no mesh yet."""
    import shutil

    from foamlib import FoamCase as Foamlib

    if case.exists():  # a rerun (a failed worker, a silent solver): start over
        shutil.rmtree(case)
    Foamlib(template).copy(case)
    if mesh and (case / "system" / "blockMeshDict").is_file() and not (case / "constant" / "polyMesh").is_dir():
        proc = foam_shell(case, "blockMesh > log.blockMesh 2>&1", bashrc)
        if proc.wait() != 0:
            log = (case / "log.blockMesh").read_text()[-1500:] if (case / "log.blockMesh").is_file() else ""
            raise InputError(f"blockMesh failed on the copy {case} of {template}: {log}")


def openfoam_mesh(template: str | Path, case: Path, bashrc: str) -> tuple[Any, dict[str, Any], Any]:
    """The template's mesh as the streamed steps carry it: (points (N, d), cells, node_type (N,)),
    from a copy at `case` meshed here (the ensemble's cases are meshed alike)."""
    from surrogate.datasets.openfoam import FoamCase

    copy_case(template, case, bashrc, mesh=True)
    points, cells, _, _, node_type = FoamCase(case).mesh()
    return points, cells, node_type


def run_openfoam(
    data: str,
    control: str,
    sim_id: str,
    params: dict[str, float],
    keys: ClientKeys | None,
    template: str,
    entries: dict[str, str],
    fields: list[str],
    workdir: str,
    bashrc: str,
) -> str:
    """Copy the template to `workdir/sim_id`, write the parameters, mesh, run, stream each step."""
    from foamlib import FoamCase as Foamlib

    from surrogate.online.client import OnlineClient
    from surrogate.online.watch import DirectoryWatcher

    case = Path(workdir) / sim_id
    copy_case(template, case, bashrc, mesh=False)
    set_entries(case, entries, params)
    app = str(Foamlib(case).application)
    mesher = "blockMesh > log.blockMesh 2>&1 && " if (case / "system" / "blockMeshDict").is_file() else ""
    proc = foam_shell(case, f"{mesher}{shlex.quote(app)} > log.{app} 2>&1", bashrc)
    with OnlineClient(data, control, sim_id, params, curve=keys) as client:
        watcher = DirectoryWatcher(case, "openfoam", client, fields or None)
        watcher.run(lambda: proc.poll() is not None, poll_s=0.2)
    if proc.returncode != 0:
        logs = sorted(case.glob("log.*"))
        tail = logs[-1].read_text()[-1500:] if logs else ""
        raise RuntimeError(f"simulation {sim_id}: {mesher}{app} in {case} exited with status {proc.returncode}: {tail}")
    return sim_id
