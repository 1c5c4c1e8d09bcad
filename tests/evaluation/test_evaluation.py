import numpy as np
import pytest
import torch

from surrogate.datasets.store import GridStore
from surrogate.evaluation.evaluate import evaluate_rollouts
from surrogate.evaluation.metrics import per_step_errors
from surrogate.evaluation.rollout import rollout
from surrogate.evaluation.surrogate_stepper import SurrogateStepper
from surrogate.generate import NS2DDataConfig, generate_ns2d
from surrogate.operators.normalizer import Normalizer
from surrogate.operators.persistence import Persistence
from surrogate.operators.surrogate import Surrogate
from surrogate.solvers.ns2d import NS2D


def test_metric_values():
    true = torch.ones(2, 3, 1, 4, 4)
    pred = true.clone()
    pred[0, 1] += 0.5  # one sample, step 2 off by 0.5 everywhere
    pred[1, 2] = 0.0  # other sample, step 3 entirely zero
    e = per_step_errors(pred, true)
    torch.testing.assert_close(e["rel_l2"], torch.tensor([0.0, 0.25, 0.5], dtype=torch.float64))
    torch.testing.assert_close(e["nmse"], torch.tensor([0.0, 0.125, 0.5], dtype=torch.float64))
    torch.testing.assert_close(e["rmse"], torch.tensor([0.0, 0.25, 0.5], dtype=torch.float64))


def test_rollout_of_the_solver_reproduces_its_stored_data(tmp_path):
    """Generation is a solver rollout; re-rolling the solver from step 0 gives the stored truth."""
    cfg = NS2DDataConfig(resolution=16, n_trajectories=4, n_steps=5, dt=0.1, batch_size=4, seed=1)
    store = GridStore(generate_ns2d(cfg, tmp_path / "s.h5"))
    solver = NS2D(16, dt=0.1)
    errs = evaluate_rollouts({"solver": solver}, store, "train", n_steps=4)
    assert errs["solver"]["rel_l2"].max() < 1e-6  # float32 storage of the initial state only
    base = Surrogate(Persistence(1, 1, 0), Normalizer(torch.zeros(1), torch.ones(1), 2, torch.zeros(1), torch.ones(1)), 1)
    errs = evaluate_rollouts({"persistence": SurrogateStepper(base, 0.1)}, store, "train", n_steps=4)
    truth = np.stack([store.read(int(i), 0, 5) for i in store.splits["train"]])
    expected = np.mean(
        [[np.linalg.norm(tr[0] - tr[k]) / np.linalg.norm(tr[k]) for k in range(1, 5)] for tr in truth.astype(np.float64)], axis=0
    )
    np.testing.assert_allclose(errs["persistence"]["rel_l2"], expected, rtol=1e-6)
    assert np.all(np.diff(expected) > 0)


def test_rollout_keeps_every_state():
    solver = NS2D(16, dt=0.05)
    s0 = solver.init_random(2, 1e-3, seed=0)
    traj = rollout(solver, s0, 3)
    assert traj.fields.shape == (2, 4, 1, 16, 16)
    torch.testing.assert_close(traj.fields[:, 0], s0.fields)
    torch.testing.assert_close(traj.fields[:, 2], solver.step(solver.step(s0)).fields)
    assert traj.time[0].tolist() == pytest.approx([0, 0.05, 0.1, 0.15])


def test_report_figures_leave_the_plotting_state_alone(tmp_path):
    """The report draws on Figure objects: no backend switch, no pyplot figures left behind
    (a notebook's own plot cells keep working after run_train)."""
    import matplotlib

    from surrogate.evaluation.plots import snapshots, spectra
    from surrogate.evaluation.report import write_report

    original = matplotlib.get_backend()
    matplotlib.use("svg")  # a backend the report must not switch away from (as `matplotlib.use("Agg")` did)
    try:
        q = {"rel_l2_q25": np.array([0.1, 0.2]), "rel_l2_median": np.array([0.2, 0.3]), "rel_l2_q75": np.array([0.3, 0.4])}
        q |= {k.replace("rel_l2", "rmse"): v * 5 for k, v in q.items()}
        results = {"persistence": {"rel_l2": np.array([0.2, 0.3]), **q}, "fno": {"rel_l2": np.array([0.1, 0.2]), **q}}
        write_report(tmp_path, results, {"split": "test", "data": "x.h5"}, np.array([0.25, 0.5]), "time")
        field = np.random.default_rng(0).standard_normal((3, 1, 16, 16)).astype(np.float32)
        coords = {"x": np.linspace(0, 1, 16), "y": np.linspace(0, 1, 16)}
        snapshots(tmp_path / "s.png", field, field * 0.9, "w", [1, 3], [0.1, 0.2, 0.3], coords, "trajectory 0")
        spectra(tmp_path / "k.png", field, field * 0.9, "w", 0.3)
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(original)
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []
    for name in ("error_vs_time.png", "s.png", "k.png"):
        assert (tmp_path / name).stat().st_size > 5_000
