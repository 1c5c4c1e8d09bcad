"""Mesh adapters on the shared real meshes, a hand-written OpenFOAM case and bad inputs."""

from pathlib import Path

import h5py
import meshio
import numpy as np
import pytest

from surrogate.datasets.mesh import read_meshgraphnet_h5, read_vtu_series, read_xdmf
from surrogate.datasets.mesh_graph import INFLOW, INTERIOR, OUTFLOW, WALL, boundary_faces, mesh_edges, to_graph
from surrogate.datasets.mesh_store import MeshStore, convert_mesh, write_mesh_store
from surrogate.datasets.openfoam import read_openfoam
from surrogate.errors import InputError
from tests.datasets.foam_case import write_case
from tests.test_cli import cli

MESHES = Path(__file__).resolve().parents[3] / "shared" / "data" / "meshes"
CYL_VTU, CYL_XDMF, ANEURYSM = MESHES / "cylinder_flow_vtu", MESHES / "cylinder_flow_xdmf" / "mock.xdmf", MESHES / "aneurysm_vtu"
needs_meshes = pytest.mark.skipif(not MESHES.is_dir(), reason=f"shared meshes not found at {MESHES}")


@needs_meshes
def test_cylinder_vtu_and_xdmf_load_the_same_series():
    vtu, xdmf = read_vtu_series(CYL_VTU), read_xdmf(CYL_XDMF)
    assert vtu.points.shape == (1923, 2) and vtu.cells["triangle"].shape == (3612, 3)
    assert vtu.fields["velocity"].shape == (6, 1923, 2) and vtu.channel_names() == ["velocity_x", "velocity_y"]
    np.testing.assert_array_equal(vtu.fields["velocity"], xdmf.fields["velocity"])
    np.testing.assert_array_equal(xdmf.times, np.arange(6.0))
    raw = meshio.read(CYL_VTU / "cylinder_3.vtu")
    np.testing.assert_array_equal(vtu.fields["velocity"][3, :, 1], raw.point_data["velocity_y"])


@needs_meshes
def test_cylinder_edges_satisfy_euler_and_node_types_follow_the_flow():
    s = read_vtu_series(CYL_VTU)
    edges = mesh_edges(s.cells, s.n_nodes)
    pairs = set(map(tuple, edges.T.tolist()))
    assert len(pairs) == edges.shape[1]  # no duplicates
    assert all((b, a) in pairs for a, b in pairs)  # both directions
    # A triangulated plane region with one hole (the cylinder): V - E + F = 2 - 1 - holes = 0.
    assert s.n_nodes - edges.shape[1] // 2 + len(s.cells["triangle"]) == 0
    g = to_graph(s.points, s.cells, np.zeros(s.n_nodes, dtype=np.int64))
    rel = g.pos[g.edge_index[1]] - g.pos[g.edge_index[0]]
    np.testing.assert_allclose(g.edge_attr[:, :2], rel, atol=1e-6)
    np.testing.assert_allclose(g.edge_attr[:, 2], rel.norm(dim=1), atol=1e-6)

    from surrogate.datasets.mesh_graph import infer_node_types

    types = infer_node_types(s.cells, s.points, s.fields["velocity"])
    x, y = s.points[:, 0], s.points[:, 1]
    assert np.all(x[types == INFLOW] < 1e-9) and (types == INFLOW).sum() > 10
    assert np.all(x[types == OUTFLOW] > 1.6 - 1e-6) and (types == OUTFLOW).sum() > 10
    walls = types == WALL
    on_channel_walls = (y < 1e-9) | (y > 0.41 - 1e-6)
    assert walls[on_channel_walls & (x > 1e-9) & (x < 1.6 - 1e-6)].all()
    cylinder = walls & ~on_channel_walls & (x > 1e-9) & (x < 1.6 - 1e-6)
    centre = s.points[cylinder].mean(0)
    radius = np.linalg.norm(s.points[cylinder] - centre, axis=1)
    assert cylinder.sum() > 20 and radius.std() < 1e-3 * radius.mean() + 1e-4  # the cylinder's surface is a circle
    assert (types[~walls & ~(types == INFLOW) & ~(types == OUTFLOW)] == INTERIOR).all()


@needs_meshes
def test_aneurysm_tetrahedra_load_with_closed_boundary():
    s = read_vtu_series(ANEURYSM)
    assert s.points.shape == (22535, 3) and s.cells["tetra"].shape == (115275, 4)
    assert s.fields["Vitesse"].shape == (2, 22535, 3)
    faces, normals = boundary_faces(s.cells, s.points)
    # Every tetrahedron has 4 faces, each interior face is shared by two.
    n_faces = (4 * len(s.cells["tetra"]) + len(faces)) // 2
    n_edges = mesh_edges(s.cells, s.n_nodes).shape[1] // 2
    assert s.n_nodes - n_edges + n_faces - len(s.cells["tetra"]) == 1  # Euler characteristic of a solid tube
    # Outward normals of a closed surface integrate to zero.
    areas = np.array([np.linalg.norm(np.cross(s.points[f[1]] - s.points[f[0]], s.points[f[2]] - s.points[f[0]])) / 2 for f in faces])
    assert np.linalg.norm((normals * areas[:, None]).sum(0)) < 1e-6 * areas.sum()


@needs_meshes
def test_store_roundtrip_and_xdmf_sidecar_opens_in_vtk(tmp_path):
    import pyvista as pv

    (path,) = convert_mesh("vtu", CYL_VTU, tmp_path / "cyl.h5")
    st = MeshStore(path)
    s = read_vtu_series(CYL_VTU)
    np.testing.assert_array_equal(st.read(0), s.fields["velocity"])
    assert st.channel_names == ["velocity_x", "velocity_y"] and st.n_steps == 6
    reader = pv.get_reader(str(tmp_path / "cyl.xdmf"))
    assert list(reader.time_values) == [0, 1, 2, 3, 4, 5]
    reader.set_active_time_value(4.0)
    out = reader.read()
    block = out[0] if isinstance(out, pv.MultiBlock) else out
    assert block.n_points == 1923 and block.n_cells == 3612
    velocity = np.asarray(block.point_data["velocity"])  # one vector, padded to 3 components
    np.testing.assert_array_equal(velocity[:, :2], s.fields["velocity"][4])
    assert not velocity[:, 2].any()
    np.testing.assert_array_equal(np.asarray(block.point_data["node_type"]), st.node_type)
    (from_xdmf,) = convert_mesh("xdmf", CYL_XDMF, tmp_path / "cyl_xdmf.h5")
    np.testing.assert_array_equal(MeshStore(from_xdmf).read(0), st.read(0))
    np.testing.assert_array_equal(MeshStore(from_xdmf).node_type, st.node_type)


def _mgn_file(path, meshes):
    with h5py.File(path, "w") as h:
        for k, (pos, cells) in enumerate(meshes):
            g = h.create_group(str(k))
            t, n = 3, len(pos)
            g["mesh_pos"] = np.broadcast_to(pos, (t, n, 2)).astype(np.float32)
            g["cells"] = np.broadcast_to(cells, (t, *cells.shape)).astype(np.int32)
            code = np.zeros((t, n, 1), dtype=np.int32)
            code[:, 0], code[:, 1], code[:, 2] = 4, 5, 6
            g["node_type"] = code
            g["velocity"] = np.random.default_rng(k).normal(size=(t, n, 2)).astype(np.float32)
            g["pressure"] = np.random.default_rng(k).normal(size=(t, n, 1)).astype(np.float32)


def test_meshgraphnet_h5_maps_node_types_and_writes_one_store_per_mesh(tmp_path):
    sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    tri = np.array([[0, 1, 2], [0, 2, 3]])
    _mgn_file(tmp_path / "train.h5", [(sq, tri), (sq * 2, tri)])
    series = read_meshgraphnet_h5(tmp_path / "train.h5")
    assert len(series) == 2 and series[0].fields["pressure"].shape == (3, 4)
    np.testing.assert_array_equal(series[0].node_type, [INFLOW, OUTFLOW, WALL, INTERIOR])
    paths = convert_mesh("meshgraphnet", tmp_path / "train.h5", tmp_path / "mgn.h5")
    assert [p.name for p in paths] == ["mgn_0.h5", "mgn_1.h5"]
    st = MeshStore(paths[1])
    np.testing.assert_array_equal(st.points, sq * 2)
    assert st.channel_names == ["pressure", "velocity_x", "velocity_y"]
    np.testing.assert_allclose(st.read(0)[..., 1:], series[1].fields["velocity"])


def test_openfoam_case_cell_data_reaches_the_points_in_2d_and_3d(tmp_path):
    write_case(tmp_path / "box", 4, 3, {0: (1.0, 2.0, 0.0), 0.5: (3.0, 4.0, 0.0)})
    s = read_openfoam(tmp_path / "box")  # front and back are empty: a 2D mesh of 5 x 4 points
    assert s.points.shape == (20, 2) and s.cells["quad"].shape == (12, 4)
    np.testing.assert_array_equal(s.times, [0.0, 0.5])
    np.testing.assert_allclose(s.fields["U"][0], np.broadcast_to([1.0, 2.0], (20, 2)))
    np.testing.assert_allclose(s.fields["U"][1], np.broadcast_to([3.0, 4.0], (20, 2)))
    assert mesh_edges(s.cells, 20).shape[1] == 2 * (4 * 4 + 3 * 5)  # x and y edges of 5 x 4 points
    assert (s.node_type[(s.points[:, 0] % 4 == 0) | (s.points[:, 1] % 3 == 0)] == OUTFLOW).all()  # zeroGradient U
    assert (s.node_type[(s.points[:, 0] % 4 != 0) & (s.points[:, 1] % 3 != 0)] == INTERIOR).all()
    write_case(tmp_path / "slab", 4, 3, {0: (1.0, 2.0, 0.5)}, two_d=False)
    s = read_openfoam(tmp_path / "slab")  # a 3D case stays 3D
    assert s.points.shape == (40, 3) and s.cells["hexahedron"].shape == (12, 8) and s.fields["U"].shape == (1, 40, 3)
    assert mesh_edges(s.cells, 40).shape[1] == 2 * (4 * 4 * 2 + 3 * 5 * 2 + 5 * 4)  # x, y and z edges of 5x4x2 points


def _vtu(path, points, cells, **point_data):
    meshio.write(path, meshio.Mesh(points, cells, point_data=point_data))


SQUARE = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 2, 0]], float)
TRIS = [("triangle", np.array([[0, 1, 2], [0, 2, 3]]))]


def test_bad_meshes_get_errors_that_name_file_and_field(tmp_path):
    _vtu(tmp_path / "poly_0.vtu", SQUARE, [("polygon", np.array([[0, 1, 2, 3]]))], u=np.zeros(5))
    with pytest.raises(InputError, match=r"poly_0.vtu: unsupported cell type\(s\) \['polygon'\]"):
        read_vtu_series(tmp_path / "poly_0.vtu")
    _vtu(tmp_path / "lines_0.vtu", SQUARE, [("line", np.array([[0, 1]]))], u=np.zeros(5))
    with pytest.raises(InputError, match="no surface or volume cells"):
        read_vtu_series(tmp_path / "lines_0.vtu")
    nan = np.zeros(5)
    nan[2] = np.nan
    _vtu(tmp_path / "nan_0.vtu", SQUARE, TRIS, u=nan)
    with pytest.raises(InputError, match=r"nan_0.vtu: field 'u' holds 1 NaN/Inf"):
        read_vtu_series(tmp_path / "nan_0.vtu")
    _vtu(tmp_path / "ok_0.vtu", SQUARE, TRIS, u=np.zeros(5))
    with pytest.raises(InputError, match=r"ok_0.vtu: no point field\(s\) \['p'\]; it has \['u'\]"):
        read_vtu_series(tmp_path / "ok_0.vtu", fields=["p"])
    _vtu(tmp_path / "moved_1.vtu", SQUARE * 2, TRIS, u=np.zeros(5))
    with pytest.raises(InputError, match="moved_1.vtu: its points differ"):
        read_vtu_series([tmp_path / "ok_0.vtu", tmp_path / "moved_1.vtu"])
    with pytest.raises(InputError, match="no such file"):
        read_xdmf(tmp_path / "missing.xdmf")
    with h5py.File(tmp_path / "nocells.h5", "w") as h:
        h["0/mesh_pos"] = SQUARE[:, :2]
    with pytest.raises(InputError, match=r"nocells.h5:/0: no dataset 'cells'"):
        read_meshgraphnet_h5(tmp_path / "nocells.h5")


def test_point_data_of_the_wrong_length_is_refused(tmp_path):
    _vtu(tmp_path / "short_0.vtu", SQUARE, TRIS, u=np.zeros(5))
    text = (tmp_path / "short_0.vtu").read_text()
    # Rewrite the file with 4 values of u for 5 points (meshio itself refuses to write it).
    import re

    m = re.search(r'(<DataArray[^>]*Name="u"[^>]*format="ascii"[^>]*>)([^<]*)(</DataArray>)', text)
    if m is None:
        meshio.write(tmp_path / "short_0.vtu", meshio.Mesh(SQUARE, TRIS, point_data={"u": np.zeros(5)}), binary=False)
        text = (tmp_path / "short_0.vtu").read_text()
        m = re.search(r'(<DataArray[^>]*Name="u"[^>]*>)([^<]*)(</DataArray>)', text)
    (tmp_path / "short_0.vtu").write_text(text[: m.start(2)] + " 0 0 0 0 " + text[m.end(2) :])
    with pytest.raises(InputError, match=r"short_0.vtu: (point field 'u' has 4 values, the mesh has 5 points|not a readable VTU)"):
        read_vtu_series(tmp_path / "short_0.vtu")


def test_isolated_nodes_are_kept_with_a_self_loop(tmp_path):
    _vtu(tmp_path / "iso_0.vtu", SQUARE, TRIS, velocity_x=np.zeros(5), velocity_y=np.zeros(5))
    s = read_vtu_series(tmp_path / "iso_0.vtu")
    edges = mesh_edges(s.cells, s.n_nodes)
    assert (edges[:, edges[0] == 4] == 4).all() and (edges[0] == 4).sum() == 1
    assert edges.shape[1] == 2 * 5 + 1
    write_mesh_store(tmp_path / "iso.h5", [s])
    assert MeshStore(tmp_path / "iso.h5").node_type[4] == INTERIOR


@needs_meshes
def test_a_single_grid_xdmf_is_pointed_to_convert_steady(tmp_path):
    """One XDMF grid (a steady sample, as graph-physics writes them) is not a time series: the
    message says which command takes it."""
    m = read_vtu_series(CYL_VTU)
    meshio.write(tmp_path / "sample.xdmf", meshio.Mesh(m.points, list(m.cells.items()), point_data={"p": m.fields["velocity"][0, :, 0]}))
    with pytest.raises(InputError, match="one grid, not a temporal collection: a steady sample, which `surrogate convert steady FOLDER`"):
        read_xdmf(tmp_path / "sample.xdmf")


def test_vtu_series_times_come_from_the_series_file_or_timevalue_or_dt(tmp_path):
    import pyvista as pv

    grid = pv.UnstructuredGrid({pv.CellType.TRIANGLE: np.array([[0, 1, 2], [0, 2, 3]])}, SQUARE[:4])
    bare = tmp_path / "bare"
    bare.mkdir()
    for k in range(3):
        grid.point_data["p"] = np.full(4, float(k))
        grid.save(bare / f"s_{k}.vtu")
        grid.field_data["TimeValue"] = np.array([0.25 * k + 1])  # as ParaView and foamToVTK stamp a step
        grid.save(tmp_path / f"s_{k}.vtu")
        grid.field_data.clear()
    assert read_vtu_series(tmp_path).times.tolist() == [1.0, 1.25, 1.5]  # TimeValue field data
    entries = ", ".join(f'{{"name": "s_{k}.vtu", "time": {10 + k}}}' for k in range(3))
    (tmp_path / "s.vtu.series").write_text(f'{{"file-series-version": "1.0", "files": [{entries}]}}')
    assert read_vtu_series(tmp_path).times.tolist() == [10.0, 11.0, 12.0]  # a .series file wins
    s = read_vtu_series(bare)
    assert s.times.tolist() == [0.0, 1.0, 2.0] and "carry no time" in s.notes[0] and "give --dt" in s.notes[0]
    assert read_vtu_series(bare, dt=0.1).times.tolist() == pytest.approx([0.0, 0.1, 0.2])
    res = cli("convert", "mesh", bare, tmp_path / "b.h5", "--dt", "0.5")
    assert res.returncode == 0 and MeshStore(tmp_path / "b.h5").times.tolist() == [0.0, 0.5, 1.0] and "placed at k * 0.5" in res.stdout
