"""`surrogate online` from an OpenFOAM case used as a template: Debian's icoFoam cavity run as
an ensemble over three viscosities (foamlib writes each one's nu), streamed time directory by
time directory into a graph transformer that must beat persistence on a held-out viscosity."""

import json
import shutil

import pytest
from foamlib import FoamFile

from tests.online.test_online_solvers import online
from tests.online.test_watch import CAVITY, FOAM_ENV

pytestmark = pytest.mark.skipif(
    not (FOAM_ENV.exists() and CAVITY.exists()), reason="OpenFOAM (Debian packages openfoam, openfoam-examples) is not installed"
)


def test_openfoam_ensemble_trains_a_mesh_model_that_beats_persistence_on_a_held_out_viscosity(tmp_path):
    template = tmp_path / "cavity"
    shutil.copytree(CAVITY, template)
    control = FoamFile(template / "system" / "controlDict")
    control["endTime"], control["writeInterval"] = 0.2, 4  # 10 steps of 0.02 s after the initial state
    out, cfg = tmp_path / "run", tmp_path / "foam.yaml"
    cfg.write_text(
        "data: {batch_size: 4}\n"
        "model: {name: graph_transformer, params: {dim: 32, heads: 2, n_blocks: 2}}\n"
        "train: {epochs: 40, lr: 2.0e-3, patience: 100}\n"
        "eval: {rollout_steps: 10, export: false}\n"
        f"stream: {{solver: openfoam, case: {template}, parameters: {{nu: [0.005, 0.02]}}, "
        "dictionaries: {nu: 'constant/transportProperties:nu'}, fields: [U, p], n_simulations: 3, "
        "test_simulations: 1, watermark: 30, steps_per_epoch: 10, workers: 2, wait_for_all: true}\n"
        f"out_dir: {out}\n"
    )
    res = online(cfg)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    stream = json.loads((out / "stream_metrics.json").read_text())
    assert stream["registered"] == 4 and stream["finished"] == 4 and stream["bad"] == {}
    assert stream["received"] == 4 * 11 and stream["pairs"] == 3 * 10  # the held-out case is never trained on
    nus = {float(FoamFile(d / "constant" / "transportProperties")["nu"]) for d in (out / "ensemble").glob("openfoam-0-*")}
    held = float(FoamFile(next((out / "ensemble").glob("test-*")) / "constant" / "transportProperties")["nu"])
    assert len(nus) == 3 and held not in nus and all(0.005 <= v <= 0.02 for v in [*nus, held])
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    model, base = metrics["graph_transformer"], metrics["persistence"]
    assert model["rmse_1step"] < base["rmse_1step"] and model["all_rollout_rmse"] < base["all_rollout_rmse"], metrics
