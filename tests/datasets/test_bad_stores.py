"""A valid store, mutated at random in the ways files go wrong (wrong types, shapes, attributes,
missing parts, NaN, a bogus trajectory count), must get exit 2 and a message from `surrogate
info` and `surrogate train`, or succeed: never a traceback or another exit code."""

import shutil

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from surrogate.cli import app
from tests.conftest import write_random_store

PATHS = [
    "dimensions",
    "dimensions/time",
    "dimensions/x",
    "boundary_conditions",
    "scalars",
    "scalars/re",
    "t0_fields",
    "t0_fields/p",
    "t0_fields/mask",
    "t1_fields",
    "t1_fields/velocity",
    "splits",
    "splits/train",
    "splits/test",
]
ATTRS = ["n_trajectories", "n_spatial_dims", "dataset_name", "grid_type", "simulation_parameters"]
BAD_VALUES = ["twelve", -1, 10**12, 3.5, 0, 7, np.array([1, 2]), True]


def replace(f: h5py.File, path: str, data) -> None:
    attrs = dict(f[path].attrs) if path in f else {}
    if path in f:
        del f[path]
    f[path] = data
    f[path].attrs.update(attrs)


MUTATIONS = {
    "root attribute": lambda f, d: f.attrs.__setitem__(d.draw(st.sampled_from(ATTRS)), d.draw(st.sampled_from(BAD_VALUES))),
    "delete": lambda f, d: f.__delitem__(d.draw(st.sampled_from(PATHS))) if d.draw(st.booleans()) else None,
    "delete attribute": lambda f, d: f.attrs.__delitem__(d.draw(st.sampled_from(ATTRS))),
    "integer field": lambda f, d: replace(f, "t0_fields/p", np.ones((6, 7, 8, 6), dtype=np.int32)),
    "complex field": lambda f, d: replace(f, "t0_fields/p", np.ones((6, 7, 8, 6), dtype=np.complex64)),
    "string field": lambda f, d: replace(f, "t0_fields/p", np.array(["a", "b"], dtype="S1")),
    "field is a group": lambda f, d: (f.__delitem__("t1_fields/velocity"), f.create_group("t1_fields/velocity")),
    "2D split": lambda f, d: replace(f, "splits/train", np.array([[0, 2], [3, 5]])),
    "split out of range": lambda f, d: replace(f, "splits/valid", np.array([d.draw(st.integers(-3, 40))])),
    "decreasing time": lambda f, d: replace(f, "dimensions/time", f["dimensions/time"][()][::-1]),
    "repeated coordinate": lambda f, d: replace(f, "dimensions/x", np.zeros(8)),
    "nan": lambda f, d: f["t0_fields/p"].__setitem__(
        (d.draw(st.integers(0, 5)), d.draw(st.integers(0, 6)), d.draw(st.integers(0, 7)), d.draw(st.integers(0, 5))),
        d.draw(st.sampled_from([np.nan, np.inf, -np.inf])),
    ),
    "short field": lambda f, d: replace(f, "t0_fields/p", np.zeros((6, d.draw(st.integers(0, 6)), 8, 6), np.float32)),
    "bc type": lambda f, d: f["boundary_conditions"][next(iter(f["boundary_conditions"]))].attrs.__setitem__(
        "bc_type", d.draw(st.sampled_from(["PERIODIC", "Wall", "slip", "", "open"]))
    ),
    "norm attribute": lambda f, d: f["scalars/re"].attrs.__setitem__(
        d.draw(st.sampled_from(["norm_offset", "norm_scale"])), d.draw(st.sampled_from(["big", np.nan, 0.0, 2.0]))
    ),
    "parameter shape": lambda f, d: replace(f, "scalars/angle", np.zeros((d.draw(st.integers(0, 8)),))),
    "nan parameter": lambda f, d: f["scalars/re"].__setitem__(d.draw(st.integers(0, 5)), d.draw(st.sampled_from([np.nan, np.inf]))),
    "tensor field": lambda f, d: (
        f["t2_fields"].attrs.__setitem__("field_names", ["stress"]),
        replace(f, "t2_fields/stress", np.zeros((6, 7, 8, 6, 2, d.draw(st.integers(1, 3))), np.float32)),
    ),
    "constant field": lambda f, d: (
        f["t0_fields"].attrs.__setitem__("field_names", [*f["t0_fields"].attrs["field_names"], "depth"]),
        replace(f, "t0_fields/depth", np.ones((d.draw(st.sampled_from([6, 5])), 8, 6), np.float32)),
        f["t0_fields/depth"].attrs.__setitem__("time_varying", d.draw(st.booleans())),
    ),
}


@pytest.fixture(scope="module")
def valid_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("valid") / "valid.h5"
    write_random_store(path)
    return path


def mutate(src, dst, data) -> list[str]:
    shutil.copy(src, dst)
    names = data.draw(st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=3))
    with h5py.File(dst, "r+") as f:
        for name in names:
            try:
                MUTATIONS[name](f, data)
            except Exception:  # an earlier mutation removed, retyped or reshaped what this one changes
                pass
    return names


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_info_on_a_mutated_store_exits_0_or_2(valid_store, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bad") / "bad.h5"
    names = mutate(valid_store, path, data)
    result = CliRunner().invoke(app, ["info", str(path)])
    assert result.exit_code in (0, 2), f"{names}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    if result.exit_code == 2:
        assert "not a valid store" in result.output or "error:" in result.output


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_train_on_a_mutated_store_exits_0_or_2(valid_store, tmp_path_factory, data):
    root = tmp_path_factory.mktemp("badtrain")
    names = mutate(valid_store, root / "bad.h5", data)
    config = root / "c.yaml"
    config.write_text(
        f"data: {{path: {root / 'bad.h5'}, batch_size: 2}}\n"
        "model: {name: fno, params: {n_modes: [2, 2], hidden_channels: 4, n_layers: 1}}\n"
        "train: {epochs: 1, tensorboard: false}\n"
        f"eval: {{rollout_steps: 2, val_rollout_steps: 1, val_trajectories: 1}}\nout_dir: {root / 'run'}\n"
    )
    result = CliRunner().invoke(app, ["train", str(config)])
    assert result.exit_code in (0, 2), f"{names}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    if result.exit_code == 2:
        assert "error:" in result.output
