"""Steady surrogates end to end: generate flows around obstacles, train enf2enf and the baselines
from the CLI, evaluate on held-out geometries at the training resolution and on every point."""

import json

import numpy as np
import pytest

from surrogate.datasets.steady_store import SteadyStore
from surrogate.errors import InputError
from surrogate.tasks.steady import load_steady_surrogate, predict_at
from tests.test_cli import cli

MODELS = {
    "enf2enf": "{n_latents: 24, latent_dim: 48, k_nearest: 6, sigma: 0.2, inner_steps: 2}",
    "steady_graph": "{width: 32, depth: 4}",
    "gino": "{latent_shape: [16, 8], modes: [6, 4], hidden: 16, n_layers: 2, radius: 0.12}",
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("steady")
    res = cli("generate", "steady", "--out", root / "steady.h5", "--n-samples", "8", "--nx", "32", "--ny", "16", "--seed", "3")
    assert res.returncode == 0, res.stdout + res.stderr
    info = cli("info", root / "steady.h5")
    assert info.returncode == 0 and "steady point-cloud store" in info.stdout and "u, v, p" in info.stdout
    return root / "steady.h5"


def train(store, tmp_path, name: str, epochs: int) -> dict:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {{path: {store}, batch_size: 2, n_queries: 128, n_geometry_points: 96, test_fraction: 0.25, train_points: 0.5}}\n"
        f"model: {{name: {name}, params: {MODELS[name]}}}\n"
        f"train: {{epochs: {epochs}, lr: 0.003, patience: 100, amp: false}}\nout_dir: {tmp_path / 'run'}\n"
    )
    res = cli("train", cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "held-out geometries" in res.stdout and "super-resolution" in res.stdout
    page = (tmp_path / "run" / "report" / "index.html").read_text()
    assert f"{name} (" in page and " parameters)" in page and f"all {epochs} epochs run" in page and "constant training mean" in page
    assert (tmp_path / "run" / "report" / "fields.png").stat().st_size > 20_000 and "src='fields.png'" in page
    return json.loads((tmp_path / "run" / "report" / "metrics.json").read_text())


def test_enf2enf_learns_held_out_geometries_and_answers_any_query(store, tmp_path):
    m = train(store, tmp_path, "enf2enf", 40)
    assert m["held_out_samples"] == 2 and set(m["relative_l2"]) == {"u", "v", "p"}
    # Better than the constant training-mean field on geometries it never saw, on every point
    # (super-resolution: it trained on half of them).
    assert m["relative_l2"]["u"] < 0.8 * m["constant_mean_relative_l2"]["u"]  # 0.307 vs 0.419 when written
    assert m["relative_l2_mean"] < m["constant_mean_relative_l2_mean"]
    assert abs(m["relative_l2_mean"] - m["relative_l2_train_resolution_mean"]) < 0.1
    assert np.isfinite(m["surface_pressure_relative_l2"])
    # The checkpoint alone answers queries anywhere in the domain of a sample, and refuses
    # points inside the obstacle or outside the channel.
    model = load_steady_surrogate(tmp_path / "run" / "best.pt")
    sample = SteadyStore(store).sample(7)
    pred = predict_at(model, sample, sample.points[:50])
    assert pred.shape == (50, 3) and np.isfinite(pred).all()
    centre = sample.rings[0][:-1].mean(0)
    with pytest.raises(InputError, match=r"1 query point\(s\) lie inside an obstacle; the first is #1"):
        predict_at(model, sample, np.stack([sample.points[0], centre]))
    with pytest.raises(InputError, match="outside the domain box"):
        predict_at(model, sample, np.array([[5.0, 0.5]]))


@pytest.mark.parametrize("name", ["steady_graph", "gino"])
def test_baselines_train_with_the_same_pipeline(store, tmp_path, name):
    m = train(store, tmp_path, name, 2)
    assert all(np.isfinite(v) for v in m["relative_l2"].values()) and m["parameters"] > 0
    # The reloaded checkpoint reproduces the reported held-out error.
    from surrogate.tasks.steady import SteadyData, SteadyDataConfig, evaluate_steady

    data = SteadyData(SteadyDataConfig(path=str(store), n_queries=128, n_geometry_points=96, test_fraction=0.25, train_points=0.5))
    again = evaluate_steady(load_steady_surrogate(tmp_path / "run" / "best.pt"), data)
    assert again["relative_l2_mean"] == pytest.approx(m["relative_l2_mean"], rel=1e-4)
    # `surrogate rollout` on a steady checkpoint: the same held-out geometries, the same report
    res = cli("rollout", tmp_path / "run" / "best.pt", store, "--out", tmp_path / "ro")
    assert res.returncode == 0, res.stdout + res.stderr
    rolled = json.loads((tmp_path / "ro" / "metrics.json").read_text())
    assert rolled["relative_l2_mean"] == pytest.approx(m["relative_l2_mean"], rel=1e-4) and (tmp_path / "ro" / "index.html").is_file()
    res = cli("rollout", tmp_path / "run" / "best.pt", store, "--long-steps", 10, "--out", tmp_path / "ro2")
    assert res.returncode == 2 and "['--long-steps'] apply to grid models only" in res.stdout and not (tmp_path / "ro2").exists()


def test_bad_steady_configs_are_refused(store, tmp_path):
    from surrogate.config import load_config
    from surrogate.tasks.steady import SteadyExperimentConfig, run_steady_train

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{path: {store}, train_points: 1.5}}\nmodel: {{name: enf2enf}}\n")
    with pytest.raises(InputError, match="train_points"):
        load_config(SteadyExperimentConfig, cfg, None)
    cfg.write_text(f"data: {{path: {store}}}\nmodel: {{name: enf2enf, params: {{n_params: 3}}}}\nout_dir: {tmp_path / 'r'}\n")
    with pytest.raises(InputError, match="derived from the data"):
        run_steady_train(load_config(SteadyExperimentConfig, cfg, None), progress=False)
    # Through the CLI: one message and exit code 2, nothing written.
    cfg.write_text(f"data: {{path: {tmp_path / 'none.h5'}}}\nmodel: {{name: gino}}\n")
    res = cli("train", cfg)
    assert res.returncode == 2 and "no such steady store" in res.stdout
    res = cli("generate", "steady", "--out", tmp_path / "x.h5", "--shapes", "square")
    assert res.returncode == 2 and "shapes" in res.stdout and not (tmp_path / "x.h5").exists()
