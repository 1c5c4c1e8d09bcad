import numpy as np
import pytest
import pyvista as pv

from surrogate.errors import InputError
from surrogate.export.paraview import write_grid_rollout, write_mesh_rollout
from surrogate.export.xarray import open_dataset, rollout_dataset, write_netcdf


def test_grid_rollout_reads_back_in_pyvista(tmp_path):
    rng = np.random.default_rng(0)
    x, y = np.linspace(0, 1, 6), np.linspace(0, 2, 4)
    pred = rng.standard_normal((3, 2, 6, 4)).astype(np.float32)
    truth = rng.standard_normal((3, 2, 6, 4)).astype(np.float32)
    mask = np.ones((6, 4), np.float32)
    mask[2, 1] = 0
    pvd = write_grid_rollout(tmp_path, pred, truth, [0.0, 0.25, 0.5], ["u", "v"], {"x": x, "y": y}, mask)
    reader = pv.get_reader(pvd)
    assert reader.time_values == pytest.approx([0.0, 0.25, 0.5])
    reader.set_active_time_value(0.25)
    step = reader.read()[0]
    assert step.n_points == 24
    assert set(step.point_data.keys()) >= {"u_pred", "u_true", "u_error", "v_pred", "mask"}
    assert step.bounds[4] == step.bounds[5] == 0.0  # a flat 2D image, shown as a surface
    cell = step.find_closest_point([x[2], y[1], 0.0])
    assert step.point_data["u_pred"][cell] == pytest.approx(pred[1, 0, 2, 1])
    assert step.point_data["v_error"][cell] == pytest.approx(pred[1, 1, 2, 1] - truth[1, 1, 2, 1], abs=1e-6)
    assert step.point_data["mask"][cell] == 0
    # velocity components are one vector array (3 components, z zero), not one array per component
    pvd = write_grid_rollout(tmp_path / "v", pred, truth, [0.0, 0.25, 0.5], ["velocity_x", "velocity_y"], {"x": x, "y": y})
    reader = pv.get_reader(pvd)
    reader.set_active_time_value(0.5)
    step = reader.read()[0]
    assert set(step.point_data.keys()) == {"velocity_pred", "velocity_true", "velocity_error"}
    np.testing.assert_allclose(step.point_data["velocity_pred"][cell], [pred[2, 0, 2, 1], pred[2, 1, 2, 1], 0.0])
    with pytest.raises(InputError, match="expected \\(T, 2, 6, 4\\)"):
        write_grid_rollout(tmp_path, pred[:, :1], truth[:, :1], [0, 1, 2], ["u", "v"], {"x": x, "y": y})


def test_mesh_rollout_reads_back_with_meshio(tmp_path):
    import meshio

    points = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=float)
    cells = {"triangle": np.array([[0, 1, 2], [1, 3, 2]])}
    pred = np.arange(2 * 1 * 4, dtype=float).reshape(2, 1, 4)
    pvd = write_mesh_rollout(tmp_path, points, cells, pred, pred * 0, [0.0, 0.1], ["p"])
    assert pv.get_reader(pvd).time_values == pytest.approx([0.0, 0.1])
    m = meshio.read(tmp_path / "rollout_0001.vtu")
    np.testing.assert_array_equal(m.point_data["p_pred"], pred[1, 0])
    np.testing.assert_array_equal(m.point_data["p_error"], pred[1, 0])


def test_xarray_rollout_and_netcdf_round_trip(tmp_path, random_store):
    rng = np.random.default_rng(1)
    pred = rng.standard_normal((2, 3, 1, 5, 4))
    ds = rollout_dataset(pred, pred + 1, np.arange(3) * 0.5, ["w"], {"x": np.arange(5.0), "y": np.arange(4.0)}, [7, 9], {"model": "fno"})
    path = write_netcdf(ds, tmp_path / "r.nc")
    back = open_dataset(path)
    assert back["w_pred"].dims == ("trajectory", "time", "x", "y") and back.attrs["model"] == "fno"
    np.testing.assert_allclose(back["w_true"].sel(trajectory=9).values, pred[1, :, 0] + 1)
    store_path, data, *_ = random_store
    lazy = open_dataset(store_path)
    np.testing.assert_array_equal(lazy["p"].isel(trajectory=2).values, data["p"][2])
    with pytest.raises(InputError, match="no such file"):
        open_dataset(tmp_path / "missing.nc")
