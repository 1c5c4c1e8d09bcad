"""`generate cfdbench`: a Dask ensemble written in CFDBench's layout, read back, trained on."""

import json

import numpy as np
import pytest

from surrogate.config import load_config
from surrogate.datasets.store import GridStore
from surrogate.errors import InputError
from surrogate.generate.cfdbench import CFDBenchGenConfig, generate_cfdbench, sweep
from surrogate.tasks.grid import GridConfig, run_train


@pytest.fixture(scope="module")
def cavity(tmp_path_factory):
    root = tmp_path_factory.mktemp("cfdbench")
    cfg = CFDBenchGenConfig("cavity", "prop", n_values=3, n_frames=16, n_workers=2)
    result = generate_cfdbench(cfg, root, root / "cavity.h5")
    return root, result


def test_folders_follow_cfdbench_layout_and_read_back(cavity):
    root, result = cavity
    assert result.written == 9 and result.failed == []
    cases = sorted((root / "cavity" / "prop").glob("case*"))
    assert [c.name for c in cases] == [f"case{i:04d}" for i in range(9)]
    u = np.load(cases[4] / "u.npy")
    params = json.loads((cases[4] / "case.json").read_text())
    assert u.shape == (16, 64, 64) and u.dtype == np.float32
    assert set(params) == {"vel_top", "density", "viscosity", "height", "width"}
    store = GridStore(root / "cavity.h5")
    assert store.n_trajectories == 9 and store.channel_names == ("u", "v")
    np.testing.assert_array_equal(store.read(4, 0, 16)[:, 0], u)
    # A closed cavity: no net flow through any vertical line (rows are y, columns x).
    assert np.abs(u[1:].sum(axis=1)).max() / 64 < 1e-7  # float32 storage
    # The lid drags the top row along +x; the flow starts from rest.
    assert np.all(u[-1, -1, 8:-8] > 0) and np.abs(u[0]).max() < 1e-12


def test_short_fno_training_beats_persistence(cavity, tmp_path):
    root, _ = cavity
    cfg = load_config(
        GridConfig,
        None,
        [
            f"data.path={root / 'cavity.h5'}",
            "data.batch_size=8",
            "model.params={n_modes: [12, 12], hidden_channels: 16, n_layers: 3}",
            "train.epochs=30",
            "train.lr=0.005",
            "eval.split=test",
            "eval.rollout_steps=5",
            f"out_dir={tmp_path / 'run'}",
        ],
    )
    result = run_train(cfg, progress=False)
    fno, base = result.results["fno"]["rel_l2"], result.results["persistence"]["rel_l2"]
    # The cases start from rest, so persistence (zero flow) has relative error 1 at every step;
    # measured here: FNO 0.51 at step 1 and 0.36-0.38 afterwards.
    assert fno.max() < 0.7 * base.min(), (fno, base)


def test_unresolvable_parameters_are_refused_before_running_with_advice_that_works(tmp_path):
    from surrogate.generate.cfdbench import resolution_for
    from surrogate.solvers.cfdbench_problems import check_resolvable

    with pytest.raises(InputError, match="cell Reynolds number .* use at least 5056 cells per side \\(--resolution\\)"):
        check_resolvable("cavity", {"vel_top": 50.0, "density": 1.0, "viscosity": 1e-3, "height": 1.0, "width": 1.0}, 64, 64, 64)
    # the default resolution (0) picks one that runs every case of the sweep; the advice names it
    assert [resolution_for("cylinder", sweep("cylinder", s, 5)) for s in ("prop", "bc", "geo")] == [256, 128, 64]
    assert resolution_for("cavity", sweep("cavity", "prop", 5)) == 64
    for case in sweep("cylinder", "prop", 5):
        check_resolvable("cylinder", case, 256, 256, 64)
    hardest = max(sweep("cylinder", "prop", 5), key=lambda c: c["density"] / c["viscosity"])
    with pytest.raises(InputError, match="use at least 256 cells per side"):
        check_resolvable("cylinder", hardest, 64, 64, 64)
    with pytest.raises(InputError, match="expected prop, bc or geo"):
        sweep("cavity", "shape", 2)


def test_existing_cases_are_never_overwritten(cavity):
    root, _ = cavity
    with pytest.raises(InputError, match="already holds cases"):
        generate_cfdbench(CFDBenchGenConfig("cavity", "prop", n_values=1, n_frames=2), root, root / "x.h5")
    assert np.load(root / "cavity" / "prop" / "case0000" / "u.npy").shape == (16, 64, 64)


def test_local_cluster_leaves_the_environment_alone():
    """distributed writes MALLOC_TRIM_THRESHOLD_ and one-BLAS-thread settings into os.environ;
    every later subprocess inherited them (a torch CLI run after this module took 2.7x longer)."""
    import os

    from surrogate.online.local_cluster import local_cluster

    before = dict(os.environ)
    cluster = local_cluster(1)
    assert dict(os.environ) == before
    cluster.workers[0].kill()  # the nanny's restart of a worker must not write into our environment either
    cluster.sync(cluster.workers[0].instantiate)
    cluster.close()
    changed = {k for k in set(os.environ) | set(before) if os.environ.get(k) != before.get(k)}
    assert not changed & {"MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}, changed


def test_domain_padding_lowers_the_error_on_the_walled_cavity(cavity, tmp_path):
    """The cavity is walled, not periodic: zero-padding the Fourier layers' domain helps a short
    training (measured: mean relative L2 over 5 rollout steps 0.434 unpadded, 0.397 padded at
    15 epochs; at 30 epochs both reach 0.374, the padding's head start is gone)."""
    root, _ = cavity
    errors = {}
    for padding in ("[]", "[0.25]"):
        cfg = load_config(
            GridConfig,
            None,
            [
                f"data.path={root / 'cavity.h5'}",
                "data.batch_size=8",
                f"model.params={{n_modes: [12, 12], hidden_channels: 16, n_layers: 3, domain_padding: {padding}}}",
                "train.epochs=15",
                "train.lr=0.005",
                "eval.rollout_steps=5",
                f"out_dir={tmp_path / padding}",
            ],
        )
        errors[padding] = float(run_train(cfg, progress=False).results["fno"]["rel_l2"].mean())
    assert errors["[0.25]"] < 0.95 * errors["[]"], errors


def test_dam_cases_carry_the_keys_cfdbench_reads(tmp_path):
    """CFDBench's dam loader reads dx and dy from case.json (a KeyError without them)."""
    from surrogate.generate.cfdbench import BASE, _write_case

    u = np.zeros((3, 64, 64), np.float32)
    _write_case(tmp_path / "case0000", u, u, dict(BASE["dam"]))
    case = json.loads((tmp_path / "case0000" / "case.json").read_text())
    needed = {"velocity", "density", "viscosity", "height", "width", "barrier_height", "barrier_width", "dx", "dy"}
    assert needed <= set(case) and case["dx"] == 1.5 / 64 and case["dy"] == 0.4 / 64
