import json
import random
import subprocess
import sys

import numpy as np
import pytest

from surrogate.datasets.cfdbench import convert_cfdbench
from surrogate.datasets.store import GridStore
from surrogate.errors import InputError

PARAMS = {
    "cavity": {"vel_top": 10.0, "density": 1.0, "viscosity": 0.01, "height": 1.0, "width": 1.0},
    "tube": {"vel_in": 1.0, "density": 10.0, "viscosity": 0.001, "height": 0.1, "width": 1.0},
    "dam": {
        "velocity": 0.1,
        "density": 100.0,
        "viscosity": 0.1,
        "height": 0.4,
        "width": 1.5,
        "barrier_height": 0.1,
        "barrier_width": 0.05,
        "dx": 1.5 / 64,
        "dy": 0.4 / 64,
    },
    "cylinder": {
        "vel_in": 1.0,
        "density": 10.0,
        "viscosity": 0.001,
        "radius": 0.06,
        "x_min": -0.2,
        "x_max": 0.8,
        "y_min": -0.2,
        "y_max": 0.2,
    },
}


def make_case(folder, params, t=4, seed=0, shape=(64, 64)):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    np.save(folder / "u.npy", rng.standard_normal((t, *shape)).astype(np.float32))
    np.save(folder / "v.npy", rng.standard_normal((t, *shape)).astype(np.float32))
    (folder / "case.json").write_text(json.dumps(params))


def make_problem(root, problem, counts=(3, 4, 3), t=4):
    src = root / problem
    k = 0
    for subset, n in zip(("prop", "bc", "geo"), counts):
        for i in range(n):
            p = dict(PARAMS[problem])
            p["density"] = p["density"] + k
            make_case(src / subset / f"case{i:04d}", p, t=t + (k % 2), seed=k)
            k += 1
    return src


@pytest.mark.parametrize("problem", ["tube", "dam", "cylinder"])
def test_padding_to_66_by_65(tmp_path, problem):
    src = make_problem(tmp_path, problem)
    convert_cfdbench(src, tmp_path / "out.h5")
    store = GridStore(tmp_path / "out.h5")
    assert store.schema.space_shape == (66, 65)
    assert store.n_steps == 4  # every case cut to the shortest
    raw_u = np.load(src / "prop" / "case0000" / "u.npy")
    w = store.read(0, 0, 4)  # (T, 2, 66, 65)
    assert np.array_equal(w[:, 0, 1:-1, 1:], raw_u)
    assert np.all(w[:, :, 0, :] == 0) and np.all(w[:, :, -1, :] == 0)  # walls
    assert np.all(w[:, 1, :, 0] == 0)
    mask = store.mask[0, 0]
    assert np.all(mask[0] == 0) and np.all(mask[-1] == 0) and np.all(mask[:, 0] == 0)
    inlet = w[:, 0, 1:-1, 0]
    if problem == "dam":
        top = int(0.1 / (0.4 / 64))  # rows below the barrier top carry the inlet velocity
        assert np.all(inlet[:, :top] == 0.1) and np.all(inlet[:, top:] == 0)
    else:
        assert np.all(inlet == PARAMS[problem]["vel_in"])


def test_cavity_is_not_padded_and_fully_fluid(tmp_path):
    src = make_problem(tmp_path, "cavity")
    convert_cfdbench(src, tmp_path / "c.h5")
    store = GridStore(tmp_path / "c.h5")
    assert store.schema.space_shape == (64, 64)
    assert np.all(store.mask == 1)
    assert np.array_equal(store.read(0, 0, 4)[:, 1], np.load(src / "prop" / "case0000" / "v.npy"))


@pytest.mark.parametrize("problem", ["cylinder", "dam"])
def test_obstacle_masks_are_the_solids_the_solver_used(tmp_path, problem):
    """The store's mask (unpadded interior, rows along y) marks exactly the cells the solver made
    solid for the same case.json on CFDBench's 64 x 64 grid."""
    from surrogate.solvers.cfdbench_problems import setup

    convert_cfdbench(make_problem(tmp_path, problem), tmp_path / "s.h5")
    mask = GridStore(tmp_path / "s.h5").mask[0, 0, 1:-1, 1:]  # (64 rows along y, 64 columns along x)
    case = {**PARAMS[problem], "viscosity": 0.1}  # the geometry is the case's; a viscosity the grid resolves
    _, state = setup(problem, case, 64, dt=0.01)
    solid = (state.mask[0, 0, :64, :64] == 0).numpy().T  # the solver's cells (x, y) -> rows along y
    assert solid.sum() >= 10 and np.array_equal(mask == 0, solid)


def test_parameters_are_normalized_as_cfdbench(tmp_path):
    convert_cfdbench(make_problem(tmp_path, "cylinder"), tmp_path / "cyl.h5")
    store = GridStore(tmp_path / "cyl.h5")
    assert store.schema.param_names == ("vel_in", "density", "viscosity", "height", "width", "center_x", "center_y", "radius")
    p = (store.params[3] - np.array(store.schema.param_offset)) / np.array(store.schema.param_scale)
    np.testing.assert_allclose(p[:3], [1.0 / 50 - 0.5, (13.0 - 5) / 4, (0.001 - 0.00238) / 0.005], rtol=1e-5)
    np.testing.assert_allclose(p[3:], [0.4, 1.0, 0.2, 0.2, 0.06], rtol=1e-6)


@pytest.mark.parametrize("problem,round_train", [("cavity", True), ("tube", False)])
def test_split_reproduces_cfdbench(tmp_path, problem, round_train):
    counts = (5, 4, 4)  # 13 cases: round(10.4) == int(10.4) but round(1.3) ... and int(1.3)
    src = make_problem(tmp_path, problem, counts)
    convert_cfdbench(src, tmp_path / "s.h5")
    store = GridStore(tmp_path / "s.h5")
    # CFDBench: dirs in prop -> bc -> geo order, random.seed(0), shuffle, 80/10/10.
    dirs = [f"{s}/case{i:04d}" for s, n in zip(("prop", "bc", "geo"), counts) for i in range(n)]
    random.seed(0)
    shuffled = list(dirs)
    random.shuffle(shuffled)
    f = round if round_train else int
    n_train, n_dev = f(13 * 0.8), f(13 * 0.1)
    names = {k: [dirs[i] for i in store.splits[k]] for k in ("train", "valid", "test")}
    assert names["train"] == shuffled[:n_train]
    assert names["valid"] == shuffled[n_train : n_train + n_dev]
    assert names["test"] == shuffled[n_train + n_dev :]


def test_subset_selection(tmp_path):
    src = make_problem(tmp_path, "tube")
    convert_cfdbench(src, tmp_path / "bc.h5", subsets=("bc",))
    assert GridStore(tmp_path / "bc.h5").n_trajectories == 4


def test_keys_cfdbench_ignores_are_ignored_and_missing_subsets_skipped(tmp_path):
    """CFDBench's loaders read the keys they need and ignore the rest (`rotated`, `dx`, ...);
    a problem folder without some subset folders converts what it has and says so."""
    import shutil

    src = make_problem(tmp_path, "tube")
    case = src / "bc" / "case0002"
    json.dump({**PARAMS["tube"], "rotated": False, "dx": 0.01, "note": "x"}, open(case / "case.json", "w"))
    shutil.rmtree(src / "geo")
    summary = convert_cfdbench(src, tmp_path / "out.h5")
    assert "(prop, bc)" in summary and "subsets missing, skipped: ['geo']" in summary
    assert "case.json keys ignored: ['dx', 'note', 'rotated']" in summary
    with pytest.raises(InputError, match="no caseNNNN folders in subsets \\['geo'\\]"):
        convert_cfdbench(src, tmp_path / "geo.h5", subsets=("geo",))


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda c: json.dump({**PARAMS["tube"], "density": "heavy"}, open(c / "case.json", "w")), "key 'density' must be a finite number"),
        (
            lambda c: json.dump({k: v for k, v in PARAMS["tube"].items() if k != "density"}, open(c / "case.json", "w")),
            "missing keys \\['density'\\]",
        ),
        (lambda c: np.save(c / "u.npy", np.zeros((4, 64), np.float32)), "expected shape \\(T, height, width\\)"),
        (lambda c: np.save(c / "v.npy", np.full((4, 64, 64), np.nan, np.float32)), "NaN"),
        (lambda c: np.save(c / "v.npy", np.zeros((4, 64, 32), np.float32)), "differ"),
        (lambda c: (c / "case.json").write_text("{oops"), "not valid JSON"),
        (lambda c: (c / "u.npy").unlink(), "u.npy: missing"),
    ],
)
def test_bad_cases_name_file_and_problem(tmp_path, damage, message):
    src = make_problem(tmp_path, "tube")
    case = src / "bc" / "case0002"
    damage(case)
    with pytest.raises(InputError, match=message) as err:
        convert_cfdbench(src, tmp_path / "out.h5")
    assert "case0002" in str(err.value)
    assert not (tmp_path / "out.h5").exists()


def test_convert_cli_exit_codes(tmp_path):
    src = make_problem(tmp_path, "cavity")
    ok = subprocess.run(
        [sys.executable, "-m", "surrogate", "convert", "cfdbench", str(src), str(tmp_path / "c.h5")], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "10 cases of cavity" in ok.stdout
    (src / "geo" / "case0001" / "case.json").write_text(json.dumps({"vel_top": 1.0}))
    bad = subprocess.run(
        [sys.executable, "-m", "surrogate", "convert", "cfdbench", str(src), str(tmp_path / "d.h5")], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "case0001/case.json" in bad.stdout and "missing keys" in bad.stdout
