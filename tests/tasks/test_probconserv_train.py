"""`surrogate train` with a probabilistic operator and a conserved channel: ProbConserv from a
config, b from the store's boundary inflow, its variance and scores in the report."""

import json

import numpy as np
import xarray as xr

from surrogate.datasets.store import GridStore
from tests.test_cli import cli


def test_train_a_probconserv_model_from_a_config(tmp_path, model="deep_ensemble"):
    """A deep ensemble (each member fitted on its own NLL, the mixture conditioned); a single
    `gaussian_fno` takes the same path with one member."""
    store = tmp_path / "pme.h5"
    res = cli(
        "generate", "gpme", "--case", "pme", "--out", store, "--n-trajectories", "12", "--n-cells", "32", "--n-steps", "9", "--dt", "0.05"
    )
    assert res.returncode == 0, res.stdout + res.stderr
    params = "{n_modes: [8], hidden_channels: 12, n_layers: 2" + (", n_members: 2}" if model == "deep_ensemble" else "}")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {{path: {store}, batch_size: 8, conserve: [u]}}\nmodel: {{name: {model}, params: {params}}}\n"
        f"train: {{epochs: 4, lr: 0.003, patience: 100, amp: false}}\neval: {{rollout_steps: 6}}\nout_dir: {tmp_path / 'run'}\n"
    )
    res = cli("train", cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    report = tmp_path / "run" / "report"
    scores = json.loads((report / "metrics.json").read_text())["one_step_gaussian"]
    # b = integral of the input + the step's boundary inflow: ProbConserv meets it to round-off, the raw Gaussian does not
    assert scores["ProbConserv"]["conservation_error_u"] < 1e-9 < scores["unconstrained"]["conservation_error_u"]
    assert scores["ProbConserv"]["predictive_std"] > 0 and np.isfinite(scores["ProbConserv"]["log_likelihood"])
    assert "held-out one-step Gaussian predictions" in (report / "index.html").read_text()
    # the rollout (the posterior mean, step after step) keeps the initial mass plus the recorded inflow
    ds = xr.open_dataset(report / "rollout.nc")
    gs = GridStore(store)
    dx = float(gs.schema.coords["x"][1] - gs.schema.coords["x"][0])
    trajs = [int(t) for t in ds["trajectory"].values]
    u0 = np.stack([gs.read(t, 0, 1)[0, 0] for t in trajs]).astype(np.float64)
    b = u0.sum(-1)[:, None] * dx + gs.boundary_inflow["u"][trajs][:, 1 : 1 + ds.sizes["time"]]
    mass = ds["u_pred"].values.astype(np.float64).sum(-1) * dx  # (traj, time)
    assert np.abs(mass - b).max() < 1e-5 * np.abs(b).max()
    assert np.abs(ds["u_true"].values.sum(-1) * dx - b).max() < 1e-5 * np.abs(b).max()
