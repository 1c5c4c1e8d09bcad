import json

import numpy as np
import pytest
import torch

from surrogate.config import load_config
from surrogate.datasets.store import GridStore
from surrogate.errors import InputError
from surrogate.generate import NS2DDataConfig, generate_ns2d
from surrogate.tasks.grid import GridConfig, load_surrogate, run_train
from surrogate.training.checkpoint import load_checkpoint, save_checkpoint
from surrogate.training.source import OfflineSource


@pytest.fixture(scope="module")
def ns2d_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("ns") / "ns2d.h5"
    cfg = NS2DDataConfig(resolution=32, n_trajectories=20, n_steps=12, dt=0.25, burn_in=4, seed=3)
    return generate_ns2d(cfg, path)


def small_config(store, out, epochs, **train):
    overrides = [
        f"data.path={store}",
        "data.batch_size=8",
        "data.n_target=2",
        "model.params={n_modes: [12, 12], hidden_channels: 12, n_layers: 3}",
        f"train.epochs={epochs}",
        "train.lr=0.005",
        "train.patience=100",
        "eval.rollout_steps=8",
        "eval.val_rollout_steps=3",
        f"out_dir={out}",
    ] + [f"train.{k}={v}" for k, v in train.items()]
    return load_config(GridConfig, None, overrides)


def test_resume_gives_the_same_next_losses(ns2d_store, tmp_path, monkeypatch):
    """A run killed in its second epoch (Ctrl-C, a batch job's limit) resumes from last.pt as if
    it had never stopped."""
    torch.manual_seed(0)
    straight = run_train(small_config(ns2d_store, tmp_path / "a", 3), progress=False)
    plain_iter = OfflineSource.__iter__

    def killed_in_epoch_2(self):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return plain_iter(self)

    monkeypatch.setattr(OfflineSource, "__iter__", killed_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_train(small_config(ns2d_store, tmp_path / "b", 3), progress=False)
    monkeypatch.setattr(OfflineSource, "__iter__", plain_iter)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1
    resumed = run_train(small_config(ns2d_store, tmp_path / "b", 3), resume=tmp_path / "b" / "last.pt", progress=False)
    assert resumed.train.epochs_run == 3
    a, b = straight.train.history, resumed.train.history
    for ha, hb in zip(a, b):
        assert hb["train_loss"] == pytest.approx(ha["train_loss"], rel=1e-6)
        assert hb["val"] == pytest.approx(ha["val"], rel=1e-5)
    wa = load_checkpoint(tmp_path / "a" / "last.pt")["state_dict"]
    wb = load_checkpoint(tmp_path / "b" / "last.pt")["state_dict"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)
    assert (tmp_path / "b" / "metrics.jsonl").read_text().count("\n") == 3


def test_short_training_beats_persistence(ns2d_store, tmp_path):
    """End-to-end learning: a few epochs on 16 small trajectories must clearly beat persistence."""
    result = run_train(small_config(ns2d_store, tmp_path / "run", 12), progress=False)
    fno, base = result.results["fno"]["rel_l2"], result.results["persistence"]["rel_l2"]
    assert fno[0] < 0.5 * base[0]
    assert fno[-1] < 0.5 * base[-1]
    assert (result.report_dir / "metrics.json").is_file()
    page = (result.report_dir / "index.html").read_text()
    for png in ("error_vs_time.png", "snapshots.png", "spectra.png"):
        assert (result.report_dir / png).stat().st_size > 10_000 and f"src='{png}'" in page
    assert "relative L2 error per rollout step" in page
    assert "fno (" in page and " parameters)" in page and "stopped</th><td>all 12 epochs run" in page and "12 epochs" in page
    assert str(result.train.best_checkpoint) in page and "device</th><td>cpu" in page
    per_step = json.loads((result.report_dir / "metrics.json").read_text())["per_step"]["fno"]
    assert per_step["rel_l2_q25"][0] <= per_step["rel_l2_median"][0] <= per_step["rel_l2_q75"][0]
    import pyvista as pv

    (pvd,) = (result.report_dir / "paraview").glob("*.pvd")
    reader = pv.get_reader(pvd)
    assert len(reader.time_values) == 8 and reader.time_values[0] == pytest.approx(0.25)
    reader.set_active_time_value(reader.time_values[-1])
    step = reader.read()[0]
    assert {"vorticity_pred", "vorticity_true", "vorticity_error"} <= set(step.point_data.keys())
    np.testing.assert_allclose(
        step.point_data["vorticity_error"], step.point_data["vorticity_pred"] - step.point_data["vorticity_true"], atol=1e-6
    )
    model, ck = load_surrogate(result.train.best_checkpoint)
    assert ck["data_schema"]["channel_names"] == ["vorticity"]


def test_checkpoint_errors(tmp_path, ns2d_store):
    run_train(small_config(ns2d_store, tmp_path / "r", 1), progress=False)
    with pytest.raises(InputError, match="checkpoint of model 'fno', but the config asks for 'persistence'"):
        load_checkpoint(tmp_path / "r" / "best.pt", expect_model="persistence")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="junk.pt: not a readable checkpoint"):
        load_checkpoint(junk)
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes((tmp_path / "r" / "best.pt").read_bytes()[:5000])
    with pytest.raises(InputError, match="trunc.pt: not a readable checkpoint"):
        load_checkpoint(trunc)
    save_checkpoint(tmp_path / "other.pt", {"weights": torch.zeros(2)})
    with pytest.raises(InputError, match="not a surrogate checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    bigger = small_config(ns2d_store, tmp_path / "r", 2)
    bigger.model.params["hidden_channels"] = 16  # weights and optimizer state of another size
    with pytest.raises(InputError, match="best.pt: cannot resume this model"):
        run_train(bigger, resume=tmp_path / "r" / "best.pt", progress=False)
    with pytest.raises(InputError, match=r"fields \['pressure'\] not in the store"):
        run_train(load_config(GridConfig, None, [f"data.path={ns2d_store}", "data.fields=[pressure]"]), progress=False)


def test_compiled_training_matches_eager(ns2d_store, tmp_path):
    """train.compile: torch.compile of the operator gives the eager losses step by step, and a
    compiled run's checkpoints load into an eager model (the state dict keeps its keys)."""
    from surrogate.datasets.windows import WindowDataset
    from surrogate.tasks.grid import build_surrogate, data_schema
    from surrogate.training.trainer import UnrolledLoss, compile_operator

    cfg = small_config(ns2d_store, tmp_path / "unused", 1)
    store = GridStore(ns2d_store)
    batch = torch.utils.data.default_collate([WindowDataset(store, "train", 1, 2, ["vorticity"])[i] for i in range(8)])
    schema = data_schema(store, ["vorticity"], 1)
    losses = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = build_surrogate(cfg.model, schema, np.zeros(1), np.ones(1))
        if compiled:
            compile_operator(model)
        loss_fn, opt = UnrolledLoss(model), torch.optim.SGD(model.parameters(), lr=1e-3)
        losses[compiled] = []
        for _ in range(4):  # a few optimizer steps on the same batch
            opt.zero_grad()
            loss = loss_fn(batch)
            loss.backward()
            opt.step()
            losses[compiled].append(float(loss))
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)
    assert losses[False][-1] < losses[False][0]

    result = run_train(small_config(ns2d_store, tmp_path / "compiled", 1, compile="true"), progress=False)
    assert result.train.epochs_run == 1 and (result.report_dir / "metrics.json").is_file()
    model, _ = load_surrogate(tmp_path / "compiled" / "best.pt")
    assert model.operator._compiled_call_impl is None  # a plain eager module again
