"""OpenFOAM cases as Debian's OpenFOAM writes them: the stock cavity (blockMesh + icoFoam) and
pitzDaily (blockMesh + simpleFoam, shortened to 20 iterations) tutorials, and foamToVTK's
default and legacy output of the cavity, converted and checked against the solver's files."""

import shutil
import subprocess

import numpy as np
import pytest

from surrogate.datasets.mesh_graph import INFLOW, INTERIOR, OUTFLOW, WALL
from surrogate.datasets.mesh_store import MeshStore
from surrogate.datasets.openfoam import read_foamtovtk, read_openfoam
from tests.online.test_watch import CAVITY, FOAM_ENV
from tests.test_cli import cli

TUTORIALS = CAVITY.parents[2]
PITZ = TUTORIALS / "simpleFoam" / "pitzDaily"
pytestmark = pytest.mark.skipif(
    not (FOAM_ENV.exists() and CAVITY.exists() and PITZ.exists()),
    reason="OpenFOAM (Debian packages openfoam, openfoam-examples) is not installed",
)


def _run(case, commands: str) -> None:
    script = f"source {FOAM_ENV} 2>/dev/null; cd {case} && {commands}"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("foam")
    cavity, pitz = root / "cavity", root / "pitzDaily"
    shutil.copytree(CAVITY, cavity)
    shutil.copytree(PITZ, pitz)
    _run(cavity, "blockMesh > log.blockMesh && icoFoam > log.icoFoam && foamToVTK > log.vtk && foamToVTK -legacy > log.legacy")
    control = (pitz / "system" / "controlDict").read_text()
    control = control.replace("endTime         2000;", "endTime         20;").replace("writeInterval   100;", "writeInterval   5;")
    (pitz / "system" / "controlDict").write_text(control)
    _run(pitz, "blockMesh > log.blockMesh && simpleFoam > log.simpleFoam")
    return cavity, pitz


def test_a_3d_case_stays_3d_with_walls_from_its_patches(tmp_path):
    """The cavity made 3D: 4 cells deep, front and back no-slip walls instead of empty."""
    case = tmp_path / "cavity3d"
    shutil.copytree(CAVITY, case)
    for name, old, new in (
        ("system/blockMeshDict", "(20 20 1)", "(20 20 4)"),
        ("system/blockMeshDict", "type empty;", "type wall;"),
        ("0/U", "type            empty;", "type            noSlip;"),
        ("0/p", "type            empty;", "type            zeroGradient;"),
        ("system/controlDict", "endTime         0.5;", "endTime         0.1;"),
    ):
        text = (case / name).read_text()
        assert old in text, (name, old)
        (case / name).write_text(text.replace(old, new))
    _run(case, "blockMesh > log.blockMesh && icoFoam > log.icoFoam")
    s = read_openfoam(case)
    assert s.points.shape == (21 * 21 * 5, 3) and s.cells["hexahedron"].shape == (1600, 8) and s.fields["U"].shape == (2, 2205, 3)
    np.testing.assert_allclose(s.times, [0.0, 0.1])
    i, j, k = np.rint(s.points / np.array([0.005, 0.005, 0.0025])).astype(int).T
    inside = (i > 0) & (i < 20) & (j > 0) & (j < 20) & (k > 0) & (k < 4)
    assert (s.node_type[inside] == INTERIOR).all() and (s.node_type[~inside] == WALL).all() and inside.sum() == 19 * 19 * 3
    lid = (j == 20) & (i > 0) & (i < 20) & (k > 0) & (k < 4)
    np.testing.assert_array_equal(s.fields["U"][-1][lid], [[1.0, 0.0, 0.0]] * int(lid.sum()))


def test_cavity_is_a_2d_mesh_typed_by_its_patches_with_the_solvers_values(cases):
    from foamlib import FoamFile

    cavity, _ = cases
    s = read_openfoam(cavity)
    assert s.points.shape == (441, 2) and s.cells["quad"].shape == (400, 4) and s.fields["U"].shape == (6, 441, 2)
    np.testing.assert_allclose(s.times, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    i, j = np.rint(s.points / 0.005).astype(int).T  # 20 x 20 cells of 0.005
    edge = (i == 0) | (i == 20) | (j == 0) | (j == 20)
    assert (s.node_type[edge] == WALL).all() and (s.node_type[~edge] == INTERIOR).all()  # movingWall and fixedWalls
    assert edge.sum() == 80 and (s.fields["U"][-1][(j == 20) & (i > 0) & (i < 20), 0] == 1.0).all()  # the lid's velocity
    # An interior point holds the mean of its 4 cells' values in the solver's own 0.5/U and 0.5/p.
    u_cells, p_cells = (np.asarray(FoamFile(cavity / "0.5" / f)["internalField"]) for f in ("U", "p"))
    inner = np.flatnonzero(~edge)
    around = [(i[inner] - a) + 20 * (j[inner] - b) for a in (0, 1) for b in (0, 1)]  # blockMesh numbers cells x fastest
    np.testing.assert_allclose(s.fields["U"][-1][inner], np.mean([u_cells[c][:, :2] for c in around], axis=0), atol=1e-6)
    np.testing.assert_allclose(s.fields["p"][-1][inner], np.mean([p_cells[c] for c in around], axis=0), atol=1e-6)


def test_pitzdaily_types_inlet_outlet_and_walls_and_skips_fields_not_written_every_time(cases):
    _, pitz = cases
    s = read_openfoam(pitz)
    assert s.points.shape == (12506, 2) and s.fields["U"].shape == (5, 12506, 2)
    np.testing.assert_allclose(s.times, [0, 5, 10, 15, 20])
    assert sorted(s.fields) == ["U", "epsilon", "k", "nut", "p"]
    assert "skipped f, nuTilda, omega, v2: not written at every time" in s.notes
    x = s.points[:, 0]
    counts = {k: int((s.node_type == k).sum()) for k in (WALL, INFLOW, OUTFLOW)}
    assert counts == {WALL: 475, INFLOW: 29, OUTFLOW: 56}  # 31 inlet and 58 outlet points, their corners on walls
    assert (s.node_type[s.node_type == INFLOW] == INFLOW).all() and np.allclose(x[s.node_type == INFLOW], x.min())
    assert np.allclose(x[s.node_type == OUTFLOW], x.max())
    np.testing.assert_allclose(s.fields["U"][-1][s.node_type == INFLOW], [[10.0, 0.0]] * 29)  # the inlet's fixedValue


def test_foamtovtk_default_and_legacy_output_match_the_case(cases, tmp_path):
    cavity, _ = cases
    case = read_openfoam(cavity)
    vtm = read_foamtovtk(cavity / "VTK")  # <case>.vtm.series -> <case>_<k>.vtm -> <case>_<k>/internal.vtu
    np.testing.assert_allclose(vtm.times, case.times)
    np.testing.assert_allclose(vtm.points, case.points, atol=1e-7)
    np.testing.assert_allclose(vtm.fields["U"], case.fields["U"], atol=1e-6)
    np.testing.assert_array_equal(vtm.node_type, case.node_type)  # typed from the case the VTK/ folder sits in
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for f in (cavity / "VTK").glob("*.vtk"):
        shutil.copy(f, legacy)
    old = read_foamtovtk(legacy)  # no .series, no case: times from TimeValue, node types left to inference
    np.testing.assert_allclose(old.times, case.times)
    np.testing.assert_allclose(old.fields["p"], case.fields["p"], atol=1e-6)
    assert old.node_type is None


def test_converted_cavity_trains_and_all_prescribed_nodes_are_refused(cases, tmp_path):
    cavity, _ = cases
    res = cli("convert", "mesh", cavity, tmp_path / "cavity.h5", "--format", "openfoam")
    assert res.returncode == 0, res.stdout + res.stderr
    st = MeshStore(tmp_path / "cavity.h5")
    assert st.channel_names == ["p", "U_x", "U_y"] and [(st.node_type == k).sum() for k in (1, 2, 3)] == [80, 0, 0]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {{paths: [{tmp_path / 'cavity.h5'}], batch_size: 1}}\n"
        "model: {name: graph_transformer, params: {dim: 16, heads: 2, n_blocks: 1}}\n"
        f"train: {{epochs: 2, patience: 100}}\neval: {{rollout_steps: 1, export: false}}\nout_dir: {tmp_path / 'run'}\n"
    )
    res = cli("train", cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "run" / "best.pt").is_file()
    # The same case with every node prescribed (as a slab typed all-wall would be): nothing to predict.
    import h5py

    with h5py.File(tmp_path / "cavity.h5", "r+") as h:
        h["geometry/node_type"][...] = WALL
    res = cli("train", cfg)
    assert res.returncode == 2 and "nothing to predict: every node is prescribed (0 interior, 441 wall" in res.stdout, res.stdout
