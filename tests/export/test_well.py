"""`surrogate export well`: our stores as The Well dataset folders, read by The Well's own loader
(the `the-well` package) with our split and our values."""

import numpy as np
import pytest
import the_well.data as well
import torch
import yaml

from surrogate.datasets.store import GridStore, param_values
from surrogate.generate import NS2DDataConfig, generate_ns2d
from tests.conftest import write_random_store
from tests.test_cli import cli


def _fno_config(tmp_path, data, train: str, evaluation: str, n_layers: int = 2):
    """A small FNO training config on `data`, written to tmp_path/c.yaml, out_dir tmp_path/run."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {{path: {data}, batch_size: 4}}\n"
        f"model: {{name: fno, params: {{n_modes: [4, 4], hidden_channels: 8, n_layers: {n_layers}}}}}\n"
        f"train: {{{train}}}\neval: {{{evaluation}}}\nout_dir: {tmp_path / 'run'}\n"
    )
    return cfg


def test_exported_ns2d_store_opens_in_welldataset_with_our_split_and_values(tmp_path):
    path = generate_ns2d(NS2DDataConfig(resolution=16, n_trajectories=10, n_steps=6, dt=0.25, seed=2, batch_size=10), tmp_path / "ns.h5")
    res = cli("export", "well", path, tmp_path / "ns_well")
    assert res.returncode == 0, res.stdout + res.stderr
    store = GridStore(path)
    for split in ("train", "valid", "test"):
        ds = well.WellDataset(path=str(tmp_path / "ns_well"), well_split_name=split, n_steps_input=2, n_steps_output=1)
        trajs = np.sort(store.splits[split])
        assert len(ds) == len(trajs) * (6 - 3 + 1)  # windows of 2 input + 1 output steps per trajectory
        sample = ds[0]  # the first trajectory of the split, from t = 0
        truth = store.read(int(trajs[0]), 0, 3)  # (T, C, X, Y)
        np.testing.assert_array_equal(sample["input_fields"][..., 0].numpy(), truth[:2, 0])
        np.testing.assert_array_equal(sample["output_fields"][..., 0].numpy(), truth[2:3, 0])
        np.testing.assert_allclose(sample["constant_scalars"].numpy(), store.params[trajs[0]].astype(np.float32))
    stats = yaml.safe_load((tmp_path / "ns_well" / "stats.yaml").read_text())
    train = np.stack([store.read(int(i), 0, 6) for i in np.sort(store.splits["train"])]).astype(np.float64)
    assert stats["mean"]["vorticity"] == pytest.approx(train.mean()) and stats["std"]["vorticity"] == pytest.approx(train.std())
    assert stats["std_delta"]["vorticity"] == pytest.approx(np.diff(train, axis=1).std())


def test_vector_fields_and_normalization_in_welldataset(tmp_path):
    """A store with a scalar, a vector field and a mask: The Well's loader reads the components in
    our order, and its z-score normalization uses the exported statistics."""
    from the_well.data.normalization import ZScoreNormalization

    data, params, mask = write_random_store(tmp_path / "r.h5", mask=False)
    res = cli("export", "well", tmp_path / "r.h5", tmp_path / "r_well")
    assert res.returncode == 0, res.stdout + res.stderr
    ds = well.WellDataset(path=str(tmp_path / "r_well"), well_split_name="train", n_steps_input=1, n_steps_output=1)
    x = ds[0]["input_fields"][0]  # (X, Y, C): p, velocity_x, velocity_y
    np.testing.assert_array_equal(x[..., 0].numpy(), data["p"][0, 0])
    np.testing.assert_array_equal(x[..., 1:].numpy(), data["velocity"][0, 0])
    normed = well.WellDataset(
        path=str(tmp_path / "r_well"), well_split_name="train", use_normalization=True, normalization_type=ZScoreNormalization
    )
    train = [0, 2, 3, 5]
    mean, std = data["p"][train].astype(np.float64).mean(), data["p"][train].astype(np.float64).std()
    expected = torch.from_numpy((data["p"][0, 0] - mean) / std).float()
    torch.testing.assert_close(normed[0]["input_fields"][0, ..., 0], expected, rtol=1e-4, atol=1e-4)
    assert len(well.WellDataset(path=str(tmp_path / "r_well"), well_split_name="test")) == 1 * 6  # one trajectory of 7 steps


def test_export_refuses_a_store_without_training_data(tmp_path):
    res = cli("export", "well", tmp_path / "missing.h5", tmp_path / "out")
    assert res.returncode == 2 and "missing.h5" in res.stdout and not (tmp_path / "out").exists()


def test_well_folders_and_files_as_the_well_ships_them(tmp_path):
    """A Well dataset folder converts into one store with the folders as the split; a single Well
    file (no splits/ group, no norm attributes: as The Well writes them) trains directly."""
    import h5py

    path = generate_ns2d(NS2DDataConfig(resolution=16, n_trajectories=10, n_steps=6, dt=0.25, seed=2, batch_size=10), tmp_path / "ns.h5")
    assert cli("export", "well", path, tmp_path / "ns_well").returncode == 0
    res = cli("convert", "well", tmp_path / "ns_well", tmp_path / "back.h5")
    assert res.returncode == 0, res.stdout + res.stderr
    original, back = GridStore(path), GridStore(tmp_path / "back.h5")
    order = np.concatenate([np.sort(original.splits[s]) for s in ("train", "valid", "test")])
    for k, traj in enumerate(order):
        np.testing.assert_array_equal(back.read(k, 0, 6), original.read(int(traj), 0, 6))
    assert {s: len(v) for s, v in back.splits.items()} == {s: len(v) for s, v in original.splits.items()}
    # one file of The Well's layout, stripped of our additions
    single = tmp_path / "ns_well" / "data" / "train" / "ns.hdf5"
    with h5py.File(single, "r+") as f:
        assert "splits" not in f
        for name in f["scalars"]:
            for a in ("norm_offset", "norm_scale"):
                del f["scalars"][name].attrs[a]
        f["boundary_conditions"][next(iter(f["boundary_conditions"]))].attrs["bc_type"] = "PERIODIC"
    info = cli("info", single)
    assert info.returncode == 0 and "(no splits/ group: all training data)" in info.stdout and "x: periodic" in info.stdout
    res = cli("train", _fno_config(tmp_path, single, "epochs: 2", "split: train, rollout_steps: 3"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "run" / "report" / "index.html").is_file()
    res = cli("convert", "well", tmp_path / "nowhere", tmp_path / "x.h5")
    assert res.returncode == 2 and "no The Well dataset here" in res.stdout


def _every_variation(f, rng) -> None:
    """Rewrite a Well file (8 trajectories, 6 steps, 16 x 16) into every variation The Well's
    specification allows: a parameter varying per trajectory and step, a constant one (shape
    ()), a static field shared by all trajectories, a field constant along y (@dim_varying),
    a rank-2 tensor field, and per-trajectory time grids."""
    b, t = 8, 6
    visc = f["scalars/viscosity"][()]
    del f["scalars/viscosity"]
    f["scalars/viscosity"] = visc[:, None] * (1 + 0.1 * np.arange(t))[None]
    f["scalars/viscosity"].attrs.update(sample_varying=True, time_varying=True)
    f["scalars/amplitude"] = np.float64(0.5)
    f["scalars/amplitude"].attrs.update(sample_varying=False, time_varying=False)
    f["scalars"].attrs["field_names"] = ["viscosity", "amplitude"]
    f.attrs["simulation_parameters"] = ["viscosity", "amplitude"]
    f["t0_fields/bathymetry"] = rng.normal(size=(16, 16)).astype(np.float32)
    f["t0_fields/bathymetry"].attrs.update(sample_varying=False, time_varying=False, dim_varying=[True, True])
    f["t0_fields/wind"] = rng.normal(size=(b, t, 16, 1)).astype(np.float32)
    f["t0_fields/wind"].attrs.update(sample_varying=True, time_varying=True, dim_varying=[True, False])
    f["t0_fields"].attrs["field_names"] = ["vorticity", "bathymetry", "wind"]
    f["t2_fields/stress"] = rng.normal(size=(b, t, 16, 16, 2, 2)).astype(np.float32)
    f["t2_fields/stress"].attrs.update(sample_varying=True, time_varying=True, dim_varying=[True, True])
    f["t2_fields"].attrs["field_names"] = ["stress"]
    time = f["dimensions/time"][()]
    del f["dimensions/time"]
    f["dimensions/time"] = time[None] + 0.5 * np.arange(b)[:, None]
    f["dimensions/time"].attrs.update(sample_varying=True, time_varying=True)


def test_every_well_spec_variation_reads_as_the_well_reads_it_and_trains(tmp_path):
    """A file in all of The Well's variations at once: The Well's loader and ours read the same
    values (state channels, the static field, per-step and constant parameters), and it trains."""
    import h5py

    from surrogate.datasets.windows import WindowDataset
    from surrogate.evaluation.evaluate import truth_and_start

    path = generate_ns2d(NS2DDataConfig(resolution=16, n_trajectories=10, n_steps=6, dt=0.25, seed=2, batch_size=10), tmp_path / "ns.h5")
    assert cli("export", "well", path, tmp_path / "w").returncode == 0
    single = tmp_path / "w" / "data" / "train" / "ns.hdf5"
    with h5py.File(single, "r+") as f:
        _every_variation(f, np.random.default_rng(0))
    theirs = well.WellDataset(path=str(tmp_path / "w"), well_split_name="train", n_steps_input=2, n_steps_output=1)
    assert theirs.metadata.field_names[2] == ["stress_xx", "stress_xy", "stress_yx", "stress_yy"]
    ours = GridStore(single)
    assert ours.channel_names == ("vorticity", "wind", "stress_xx", "stress_xy", "stress_yx", "stress_yy")
    assert ours.schema.static_channels == ("bathymetry",) and ours.param_schedule.shape == (8, 6, 2)
    for traj in (0, 5):
        sample = theirs[traj * 4]  # 4 windows per trajectory: trajectory `traj` from t = 0
        np.testing.assert_array_equal(np.moveaxis(ours.read(traj, 0, 2), 1, -1), sample["input_fields"].numpy())
        np.testing.assert_array_equal(ours.read_static(traj)[0], sample["constant_fields"][..., 0].numpy())
        np.testing.assert_allclose(ours.param_schedule[traj, :2, 0], sample["input_scalars"][:, 0].numpy(), rtol=1e-6)
        np.testing.assert_allclose(ours.params[traj, 1], sample["constant_scalars"][0].numpy())
    # windows and rollouts condition each step on that step's parameters, and read the static field
    item = WindowDataset(ours, "train", 1, 2)[3]  # trajectory 0, t = 3: targets at steps 4, 5 from inputs at 3, 4
    np.testing.assert_allclose(item["param_steps"][:, 0].numpy(), ours.param_schedule[0, 3:5, 0], rtol=1e-6)
    assert item["static"].shape == (1, 16, 16)
    _, state = truth_and_start(ours, [0, 1], 1, 3, None)
    later = state.evolve(state.fields, state.time + 0.25).evolve(state.fields, state.time + 0.5)
    np.testing.assert_allclose(later.params[:, 0].numpy(), ours.param_schedule[:2, 2, 0])
    info = cli("info", single)
    assert info.returncode == 0 and "bathymetry" in info.stdout and "vary in time" in info.stdout, info.stdout + info.stderr
    res = cli("train", _fno_config(tmp_path, single, "epochs: 1", "split: train, rollout_steps: 2", n_layers=1))
    assert res.returncode == 0, res.stdout + res.stderr
    ck = torch.load(tmp_path / "run" / "best.pt", weights_only=False)
    assert ck["data_schema"]["static_channels"] == ["bathymetry"]
    res = cli("rollout", tmp_path / "run" / "best.pt", single, "--split", "train", "--steps", 2, "--out", tmp_path / "ro")
    assert res.returncode == 0, res.stdout + res.stderr
    # Per-trajectory time grids must share one step: a surrogate advances by one dt.
    ours.close()
    del theirs
    with h5py.File(single, "r+") as f:
        f["dimensions/time"][3] = np.arange(6) * 0.5
    res = cli("info", single)
    assert res.returncode == 2 and "trajectories [3] step by another dt than trajectory 0 (0.25)" in res.stdout, res.stdout


def test_a_well_dataset_folder_is_data_path_linked_not_copied(tmp_path, monkeypatch):
    """`data.path: NAME/` (The Well's folder layout): its files are linked (virtual datasets, no
    copy) in split order with the folders as the split, and stats.yaml normalizes."""
    import h5py

    from surrogate.datasets.well_folder import open_grid_store

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = generate_ns2d(NS2DDataConfig(resolution=16, n_trajectories=10, n_steps=6, dt=0.25, seed=2, batch_size=10), tmp_path / "ns.h5")
    assert cli("export", "well", path, tmp_path / "ns_well").returncode == 0
    original, linked = GridStore(path), open_grid_store(tmp_path / "ns_well")
    order = np.concatenate([np.sort(original.splits[s]) for s in ("train", "valid", "test")])
    for k, traj in enumerate(order):
        np.testing.assert_array_equal(linked.read(k, 0, 6), original.read(int(traj), 0, 6))
    assert {s: len(v) for s, v in linked.splits.items()} == {s: len(v) for s, v in original.splits.items()}
    with h5py.File(linked.path, "r") as f:
        assert f["t0_fields/vorticity"].is_virtual and linked.path.stat().st_size < 100_000  # nothing copied
    stats = yaml.safe_load((tmp_path / "ns_well" / "stats.yaml").read_text())
    stats["mean"]["vorticity"], stats["std"]["vorticity"] = 0.125, 2.5  # the file's values, not recomputed ones
    (tmp_path / "ns_well" / "stats.yaml").write_text(yaml.safe_dump(stats))
    info = cli("info", tmp_path / "ns_well")
    assert info.returncode == 0 and "train: 1 file(s)" in info.stdout and "stats.yaml" in info.stdout, info.stdout + info.stderr
    res = cli("train", _fno_config(tmp_path, tmp_path / "ns_well", "epochs: 1", "rollout_steps: 2"))
    assert res.returncode == 0, res.stdout + res.stderr
    ck = torch.load(tmp_path / "run" / "best.pt", weights_only=False)
    assert ck["normalizer"]["mean"].tolist() == [0.125] and ck["normalizer"]["std"].tolist() == [2.5]


def _well_format_problems(path) -> list[str]:
    """The rules of The Well's format checker (scripts/check_thewell_formatting.py in its
    repository, not shipped in the package), restated: root attributes (each simulation
    parameter among them), boolean varying flags on dimensions, fields, scalars and boundary
    conditions, and shapes that follow the flags."""
    import h5py

    p = []
    with h5py.File(path, "r") as f:
        for a, kind in (("n_spatial_dims", np.integer), ("n_trajectories", np.integer), ("dataset_name", str), ("grid_type", str)):
            if not isinstance(f.attrs.get(a), kind):
                p.append(f"@{a}")
        for name in f.attrs["simulation_parameters"]:
            if name not in f.attrs or name not in f["scalars"]:
                p.append(f"simulation parameter {name} not a root attribute and a scalar")
        dims = f["dimensions"]
        names = list(dims.attrs["spatial_dims"])
        if len(names) != f.attrs["n_spatial_dims"] or not isinstance(dims["time"].attrs.get("sample_varying"), np.bool_):
            p.append("dimensions")
        for d in names:
            if not all(isinstance(dims[d].attrs.get(k), np.bool_) for k in ("sample_varying", "time_varying")):
                p.append(f"dimensions/{d} flags")
        for order in range(3):
            group = f[f"t{order}_fields"]
            for name in group.attrs["field_names"]:
                ds = group[name]
                flags = [ds.attrs.get(k) for k in ("sample_varying", "time_varying")]
                dim_varying = ds.attrs.get("dim_varying")
                if not all(isinstance(x, np.bool_) for x in flags) or dim_varying is None or len(dim_varying) != len(names):
                    p.append(f"{group.name}/{name} flags")
                    continue
                expected = [f.attrs["n_trajectories"]] if flags[0] else []
                expected += [dims["time"].shape[-1]] if flags[1] else []
                expected += [dims[d].shape[-1] for d, varying in zip(names, dim_varying) if varying]
                if list(ds.shape[: len(expected)]) != expected:  # the checker's reading: the varying axes first, in order
                    p.append(f"{name}: shape {ds.shape} against its flags")
        for name in f["scalars"].attrs["field_names"]:
            ds = f["scalars"][name]
            flags = [ds.attrs.get(k) for k in ("sample_varying", "time_varying")]
            if not all(isinstance(x, np.bool_) for x in flags) or ds.ndim != sum(flags):
                p.append(f"scalars/{name}")
        for key, bc in f["boundary_conditions"].items():
            needed = ("bc_type", "sample_varying", "time_varying", "associated_fields", "associated_dims")
            if not all(k in bc.attrs for k in needed) or "mask" not in bc or not len(bc.attrs["associated_dims"]):
                p.append(f"boundary_conditions/{key}")
    return p


def test_stores_and_their_well_exports_meet_the_well_format_rules(tmp_path):
    path = generate_ns2d(NS2DDataConfig(resolution=16, n_trajectories=10, n_steps=6, dt=0.25, seed=2, batch_size=10), tmp_path / "ns.h5")
    write_random_store(tmp_path / "r.h5", mask=True)
    assert cli("export", "well", path, tmp_path / "w").returncode == 0
    files = [path, tmp_path / "r.h5", *sorted((tmp_path / "w" / "data").glob("*/ns.hdf5"))]
    assert len(files) == 5
    for f in files:
        assert _well_format_problems(f) == [], f
    import h5py

    with h5py.File(tmp_path / "w" / "data" / "test" / "ns.hdf5", "r") as f, h5py.File(path, "r") as whole:
        test = np.sort(whole["splits/test"][()])
        np.testing.assert_allclose(f.attrs["viscosity"], param_values(whole["scalars/viscosity"], 10, 6)[test, 0])


def test_gpme_boundary_inflow_is_a_well_time_varying_scalar_the_loader_reads(tmp_path):
    """The inflow that ProbConserv's b needs travels as a time-varying scalar of The Well's layout:
    the store meets the format rules, and The Well's loader returns it as a variable scalar."""
    from surrogate.generate import GPMEDataConfig, generate_gpme

    path = generate_gpme(GPMEDataConfig("pme", n_trajectories=10, n_cells=16, n_steps=5, dt=0.05, max_substep=5e-3), tmp_path / "g.h5")
    assert _well_format_problems(path) == []
    assert cli("export", "well", path, tmp_path / "w").returncode == 0
    ds = well.WellDataset(path=str(tmp_path / "w"), well_split_name="train", n_steps_input=2, n_steps_output=1)
    sample = ds[0]
    store = GridStore(path)
    traj = int(np.sort(store.splits["train"])[0])
    inflow = store.boundary_inflow["u"][traj]
    assert inflow[-1] > 0.01  # mass does enter at x = 0
    np.testing.assert_allclose(sample["input_scalars"][:, 0].numpy(), inflow[:2], rtol=1e-6)
    np.testing.assert_allclose(sample["output_scalars"][:, 0].numpy(), inflow[2:3], rtol=1e-6)
    np.testing.assert_allclose(sample["constant_scalars"].numpy(), store.params[traj].astype(np.float32))
