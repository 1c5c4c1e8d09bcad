import subprocess
import sys

import h5py
import numpy as np
import pytest

from surrogate.datasets.stats import channel_stats
from surrogate.datasets.store import GridSchema, GridStore, GridStoreWriter
from surrogate.datasets.validate import validate_store
from surrogate.datasets.windows import WindowDataset
from surrogate.errors import InputError


def test_round_trip_is_bit_exact(random_store):
    path, data, params, mask = random_store
    store = GridStore(path)
    assert store.channel_names == ("p", "velocity_x", "velocity_y")
    for b in range(6):
        got = store.read(b, 0, 7)  # (T, C, X, Y)
        assert np.array_equal(got[:, 0], data["p"][b])
        assert np.array_equal(got[:, 1:], np.moveaxis(data["velocity"][b], -1, 1))
    assert np.array_equal(store.params, params.astype(np.float32))
    assert store.schema.param_offset == (100.0, 0.0) and store.schema.param_scale == (50.0, 2.0)
    assert np.array_equal(store.mask[:, 0], mask)
    assert store.splits["test"].tolist() == [4]
    assert store.dt == 0.5


def test_layout_follows_the_well(random_store):
    path, *_ = random_store
    with h5py.File(path) as f:
        assert f.attrs["grid_type"] == "cartesian" and f.attrs["n_spatial_dims"] == 2
        assert list(f["dimensions"].attrs["spatial_dims"]) == ["x", "y"]
        assert f["t0_fields/p"].shape == (6, 7, 8, 6)
        assert f["t1_fields/velocity"].shape == (6, 7, 8, 6, 2)
        assert f["t0_fields/mask"].attrs["time_varying"] == np.False_
        assert f["boundary_conditions/x_boundary"].attrs["bc_type"] == "periodic"
        assert list(f["scalars"].attrs["field_names"]) == ["re", "angle"]


def test_windows_index_the_right_steps(random_store):
    path, data, params, _ = random_store
    ds = WindowDataset(GridStore(path), "train", n_input=2, n_target=3, fields=["p"])
    assert len(ds) == 4 * (7 - 5 + 1)
    item = ds[4]  # second trajectory of the split (2), window starting at step 1
    assert item["traj"] == 2 and item["t"] == 1
    assert np.array_equal(item["x"][:, 0].numpy(), data["p"][2, 1:3])
    assert np.array_equal(item["y"][:, 0].numpy(), data["p"][2, 3:6])
    with pytest.raises(InputError, match="do not fit"):
        WindowDataset(GridStore(path), "train", n_input=4, n_target=4)


def test_stats_match_numpy_and_xarray_view(random_store):
    path, data, *_ = random_store
    store = GridStore(path)
    mean, std = channel_stats(store, "train")
    train = [0, 2, 3, 5]
    np.testing.assert_allclose(mean[0], data["p"][train].astype(np.float64).mean(), rtol=1e-10)
    np.testing.assert_allclose(std[1:], data["velocity"][train].astype(np.float64).std(axis=(0, 1, 2, 3)), rtol=1e-10)
    ds = store.to_xarray()
    assert ds["velocity"].dims == ("trajectory", "time", "x", "y", "velocity_component")
    assert np.array_equal(ds["p"].isel(trajectory=3).values, data["p"][3])
    assert float(ds["p"].mean().compute()) == pytest.approx(data["p"].astype(np.float64).mean(), rel=1e-5)


def test_nan_in_training_data_is_named(tmp_path):
    path = tmp_path / "nan.h5"
    from tests.conftest import write_random_store

    write_random_store(path)
    with h5py.File(path, "r+") as f:
        f["t0_fields/p"][0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match=r"\['p'\] contain NaN"):
        channel_stats(GridStore(path), "train")
    assert any("NaN" in p for p in validate_store(path, scan_values=True))


def test_writer_is_atomic(tmp_path):
    path = tmp_path / "s.h5"
    path.write_bytes(b"precious")
    schema = GridSchema("x", np.arange(3.0), {"x": np.arange(4.0)}, scalar_fields=("a",))
    with pytest.raises(InputError, match="never written"):
        with GridStoreWriter(path, schema, 2) as w:
            w.write(0, {"a": np.zeros((1, 3, 4), np.float32)})
    assert path.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [path]
    with pytest.raises(InputError, match="NaN"):
        with GridStoreWriter(tmp_path / "n.h5", schema, 1) as w:
            w.write(0, {"a": np.full((1, 3, 4), np.nan, np.float32)})
    assert not (tmp_path / "n.h5").exists()


def test_bad_files_are_reported(tmp_path, random_store):
    path, *_ = random_store
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[:4000])
    for bad in (text, truncated):
        assert "not a readable HDF5 file" in validate_store(bad)[0]
        with pytest.raises(InputError, match=str(bad.name)):
            GridStore(bad)
    broken = tmp_path / "broken.h5"
    broken.write_bytes(path.read_bytes())
    with h5py.File(broken, "r+") as f:
        del f["t1_fields/velocity"]
    assert validate_store(broken) == ["t1_fields/velocity: listed in @field_names but missing"]
    with pytest.raises(InputError, match=r"fields \['pressure'\] not in the store"):
        GridStore(path).require_fields(["pressure"])


def test_info_cli(tmp_path, random_store):
    path, *_ = random_store
    ok = subprocess.run([sys.executable, "-m", "surrogate", "info", str(path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "velocity_x" in ok.stdout and "train 4" in ok.stdout
    bad = tmp_path / "bad.h5"
    bad.write_text("nope")
    res = subprocess.run([sys.executable, "-m", "surrogate", "info", str(bad)], capture_output=True, text=True)
    assert res.returncode == 2
    assert "not a readable HDF5 file" in res.stdout


def test_temporaries_of_dead_writers_are_removed_at_the_next_write(tmp_path):
    """A killed `generate` leaves `.name.tmp-<pid>.h5`; the next write of that file removes it,
    and leaves a live writer's temporary alone."""
    import os
    import subprocess
    import sys

    from surrogate.datasets.atomic import atomic_dir, atomic_path

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale, live = tmp_path / f".s.tmp-{dead}.h5", tmp_path / f".s.tmp-{os.getppid()}.h5"  # the parent: alive, not us
    stale.write_bytes(b"half")
    live.write_bytes(b"busy")
    stale_dir = tmp_path / f".report.tmp-{dead}"
    stale_dir.mkdir()
    with atomic_path(tmp_path / "s.h5") as tmp:
        tmp.write_bytes(b"whole")
    with atomic_dir(tmp_path / "report") as folder:
        (folder / "index.html").write_text("ok")
    assert not stale.exists() and not stale_dir.exists() and live.exists()
    assert (tmp_path / "s.h5").read_bytes() == b"whole" and (tmp_path / "report" / "index.html").is_file()
