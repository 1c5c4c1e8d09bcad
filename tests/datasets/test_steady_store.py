"""The steady point-cloud store and the VTU adapter for steady samples (AirfRANS-like files)."""

import json

import meshio
import numpy as np
import pytest

from surrogate.datasets.steady_mesh import convert_steady
from surrogate.datasets.steady_store import SteadySample, SteadyStore, write_steady_store
from surrogate.errors import InputError
from tests.datasets.test_geometry import quad_mesh_with_hole


def write_airfoil_like(path, speed: float, angle: float, sdf: bool = True, pinch: bool = False) -> None:
    """A quad mesh around a square obstacle with U (N, 3), p and implicit_distance point fields."""
    pts, quads = quad_mesh_with_hole(8, 6, (3, 5, 2, 4))
    if pinch:
        x, y = pts[quads].mean(1).T
        quads = quads[~((x == 5.5) & (y == 4.5))]  # touches the hole at one corner only
    x, y = pts[:, 0], pts[:, 1]
    dist = np.maximum(np.maximum(3 - x, x - 5), np.maximum(2 - y, y - 4))  # outside a square: >= 0, 0 on it (Chebyshev)
    data = {
        "U": np.stack(
            [speed * np.cos(np.radians(angle)) * np.ones_like(x), speed * np.sin(np.radians(angle)) * np.ones_like(x), np.zeros_like(x)], 1
        ),
        "p": 0.5 * speed**2 - x * 0.01,
    }
    if sdf:
        data["implicit_distance"] = dist
    mesh = meshio.Mesh(
        np.c_[pts, np.zeros(len(pts))], [("quad", quads)], point_data=data, field_data={"Uinf": np.array([speed]), "AoA": np.array([angle])}
    )
    meshio.write(path, mesh)


def test_vtu_samples_convert_with_boundaries_params_and_sdf(tmp_path):
    src = tmp_path / "airfoils"
    src.mkdir()
    for k, (speed, angle) in enumerate([(30.0, 2.0), (40.0, -4.0), (50.0, 6.0)]):
        write_airfoil_like(src / f"airFoil2D_SST_{speed}_{angle}_{k}.vtu", speed, angle)  # AirfRANS's naming
    path = convert_steady(src, tmp_path / "steady.h5", ["U", "p"], "implicit_distance", param_names=["Uinf", "AoA"], velocity="U")
    store = SteadyStore(path)
    assert len(store) == 3 and store.field_names == ["U_x", "U_y", "p"] and store.param_names == ["Uinf", "AoA"]
    np.testing.assert_allclose(store.params, [[30.0, 2.0], [40.0, -4.0], [50.0, 6.0]])
    s = store.sample(1)
    assert s.points.shape == (63, 2) and s.fields.shape == (63, 3)
    np.testing.assert_allclose(s.fields[:, 0], 40 * np.cos(np.radians(-4.0)), rtol=1e-6)
    # One obstacle loop (the 2 x 2 hole), its 8 boundary nodes on the surface band; the outer loop is not an obstacle.
    from surrogate.datasets.geometry import ring_area

    assert len(s.rings) == 1 and abs(ring_area(s.rings[0])) == pytest.approx(4.0)
    assert s.surface.sum() == 8 and np.allclose(s.sdf[s.surface], 0)
    # Node types inferred from the boundary and the flow: inflow on the left (x = 0), outflow on the right.
    assert (s.node_type[s.points[:, 0] == 0] > 0).all() and s.node_type[(s.points[:, 0] == 8) & (s.points[:, 1] == 3)][0] == 3
    # The flow slips along the obstacle (U is uniform there too): its loop is a wall all the same.
    assert (s.node_type[s.surface] == 1).all()
    assert (tmp_path / "steady.xdmf").is_file()


def test_node_type_field_in_meshgraphnet_codes_is_mapped_and_unknown_codes_refused(tmp_path):
    """graph-physics / MeshGraphNet code points as normal 0, obstacle 1, airfoil 2, handle 3,
    inflow 4, outflow 5, wall 6; ours are interior 0, wall 1, inflow 2, outflow 3."""
    src = tmp_path / "airfoils"
    src.mkdir()
    path = src / "airFoil2D_SST_30.0_2.0_0.vtu"
    write_airfoil_like(path, 30.0, 2.0)
    mesh = meshio.read(path)
    x, y = mesh.points[:, 0], mesh.points[:, 1]
    codes = np.zeros(len(x))
    codes[(x >= 3) & (x <= 5) & (y >= 2) & (y <= 4)] = 2  # the obstacle's loop: airfoil
    codes[(y == 0) | (y == 6)] = 6
    codes[x == 0], codes[x == 8] = 4, 5
    mesh.point_data["node_type"] = codes
    meshio.write(path, mesh)
    out = convert_steady(src, tmp_path / "s.h5", ["U", "p"], "implicit_distance", node_type_field="node_type")
    s = SteadyStore(out).sample(0)
    expected = np.select([codes == 2, codes == 6, codes == 4, codes == 5], [1, 1, 2, 3], 0)
    np.testing.assert_array_equal(s.node_type, expected)
    mesh.point_data["node_type"] = np.where(x == 8, 9.0, codes)  # 9: not a node type (MeshGraphNet's count)
    meshio.write(path, mesh)
    with pytest.raises(InputError, match=r"node-type field 'node_type' holds unknown codes \[9\]; MeshGraphNet's codes are 0 normal"):
        convert_steady(src, tmp_path / "s2.h5", ["U", "p"], "implicit_distance", node_type_field="node_type")


def test_params_from_a_json_table(tmp_path):
    write_airfoil_like(tmp_path / "a.vtu", 30.0, 2.0)
    (tmp_path / "params.json").write_text(json.dumps({"a": {"mach": 0.1, "reynolds": 3e6}}))
    store = SteadyStore(convert_steady([tmp_path / "a.vtu"], tmp_path / "s.h5", ["p"], "implicit_distance", tmp_path / "params.json"))
    assert store.param_names == ["mach", "reynolds"] and store.params.tolist() == [[0.1, 3e6]]


def test_bad_steady_inputs_are_refused_and_nothing_is_written(tmp_path):
    write_airfoil_like(tmp_path / "nosdf.vtu", 30.0, 2.0, sdf=False)
    with pytest.raises(InputError, match=r"nosdf.vtu: no SDF field 'implicit_distance'.*point fields are \['U', 'p'\]"):
        convert_steady([tmp_path / "nosdf.vtu"], tmp_path / "out.h5", ["U", "p"], "implicit_distance")
    write_airfoil_like(tmp_path / "pinched.vtu", 30.0, 2.0, pinch=True)
    with pytest.raises(InputError, match=r"pinched.vtu: open boundary: boundary vertex \d+ at \(5, 4\) joins 4 boundary edges"):
        convert_steady([tmp_path / "pinched.vtu"], tmp_path / "out.h5", ["U", "p"], "implicit_distance")
    write_airfoil_like(tmp_path / "ok.vtu", 30.0, 2.0)
    with pytest.raises(InputError, match=r"ok.vtu: no point field\(s\) \['nut'\]"):
        convert_steady([tmp_path / "ok.vtu"], tmp_path / "out.h5", ["U", "nut"], "implicit_distance")
    with pytest.raises(InputError, match=r"ok.vtu: global parameter\(s\) \['mach'\] read from the file name"):
        convert_steady([tmp_path / "ok.vtu"], tmp_path / "out.h5", ["U"], "implicit_distance", param_names=["mach"])
    assert not (tmp_path / "out.h5").exists()


def test_store_round_trip_and_bad_samples(tmp_path):
    rng = np.random.default_rng(0)
    ring = np.array([[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6], [0.4, 0.4]])
    s = SteadySample(
        rng.random((50, 2)), rng.random(50), rng.random((50, 3)), np.zeros(50, int), np.zeros(50, bool), np.array([1.0]), [ring]
    )
    path = write_steady_store(tmp_path / "s.h5", [s, s], ["u", "v", "p"], ["speed"])
    back = SteadyStore(path).sample(1)
    np.testing.assert_allclose(back.points, s.points)
    np.testing.assert_allclose(back.fields, s.fields, rtol=1e-6)
    np.testing.assert_allclose(back.rings[0], ring)
    bad = SteadySample(s.points, s.sdf[:-1], s.fields, s.node_type, s.surface, s.params, [ring])
    with pytest.raises(InputError, match=r"sample 0: sdf of shape \(49,\); expected \(50,\)"):
        write_steady_store(tmp_path / "bad.h5", [bad], ["u", "v", "p"], ["speed"])
    open_ring = SteadySample(s.points, s.sdf, s.fields, s.node_type, s.surface, s.params, [ring[:-1]])
    with pytest.raises(InputError, match="sample 0: ring 0: open boundary"):
        write_steady_store(tmp_path / "bad.h5", [open_ring], ["u", "v", "p"], ["speed"])
    assert not (tmp_path / "bad.h5").exists()
    with pytest.raises(InputError, match="not a steady point-cloud store"):
        import h5py

        with h5py.File(tmp_path / "other.h5", "w") as h:
            h.attrs["layout"] = "grid"
        SteadyStore(tmp_path / "other.h5")


def test_sidecar_opens_in_vtk(tmp_path):
    vtk = pytest.importorskip("vtkmodules.vtkIOXdmf2")
    ring = np.array([[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6], [0.4, 0.4]])
    rng = np.random.default_rng(1)
    s = SteadySample(
        rng.random((40, 2)), rng.random(40), rng.random((40, 3)), np.zeros(40, int), np.zeros(40, bool), np.array([1.0]), [ring]
    )
    path = write_steady_store(tmp_path / "s.h5", [s, s], ["u", "v", "p"], ["speed"])
    reader = vtk.vtkXdmfReader()
    reader.SetFileName(str(path.with_suffix(".xdmf")))
    reader.UpdateInformation()
    reader.Update()
    grid = reader.GetOutputDataObject(0)
    assert grid.GetNumberOfPoints() == 40
    from vtkmodules.util.numpy_support import vtk_to_numpy

    np.testing.assert_allclose(vtk_to_numpy(grid.GetPointData().GetArray("p")).ravel(), s.fields[:, 2], rtol=1e-6)


def test_convert_steady_cli(tmp_path):
    from tests.test_cli import cli

    src = tmp_path / "vtu"
    src.mkdir()
    for k in range(2):
        write_airfoil_like(src / f"airFoil2D_SST_{30.0 + k}_{2.0 * k}.vtu", 30.0 + k, 2.0 * k)
    res = cli("convert", "steady", src, tmp_path / "a.h5", "--fields", "U,p", "--sdf-field", "implicit_distance")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "U_x, U_y, p" in res.stdout and SteadyStore(tmp_path / "a.h5").sample(1).fields.shape == (63, 3)
    res = cli("convert", "steady", src, tmp_path / "b.h5", "--sdf-field", "wall_distance")
    assert res.returncode == 2 and "no SDF field 'wall_distance'" in res.stdout and not (tmp_path / "b.h5").exists()
