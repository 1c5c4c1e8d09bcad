"""Mesh graph transformer vs MeshGraphNet, both as published, on the shared mesh frames.

Meshes (`../shared/data/meshes`):
  - cylinder: CylinderFlow, 2D, 6 frames, 1,923 nodes. The first 4 transitions train and the
    last is held out.
  - aneurysm: 3D tetrahedra, 2 frames, 22,535 nodes. Its one transition trains, and the
    errors are in-sample: there is no other frame.
Per mesh, every model is trained with the same budget (epochs, batch, lr, input noise) and
compared on:
  - one training step (forward, loss, backward, AdamW), timed interleaved;
  - training memory (CUDA peak on a GPU; on CPU the activation bytes autograd saves);
  - one-step RMSE on the held-out transition, and the all-rollout RMSE (Garnier et al.) of a
    rollout from frame 0 over every frame.
The models:
  - MeshGraphNet (latent 128, 15 steps);
  - the transformer with 10 blocks at dim 128, about MeshGraphNet's parameter count. It is the
    paper's larger model, and the paper reports 52% lower all-rollout RMSE for it;
  - the transformer with 4 blocks at dim 64, about 10x fewer parameters. It is the paper's
    smallest model, which matched MeshGraphNet's error 7x faster and 6x smaller;
  - the larger transformer with our option of 4 global tokens per graph, to measure it.

    python -m benchmarks.mesh_models [--meshes cylinder aneurysm] [--epochs 30]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch_geometric.data import Batch

from benchmarks.common import median, time_interleaved, training_memory_bytes, write_result
from surrogate.datasets.mesh_store import convert_mesh
from surrogate.evaluation.mesh_stepper import MeshSurrogateStepper
from surrogate.evaluation.metrics import mesh_rollout_metrics
from surrogate.evaluation.rollout import rollout
from surrogate.fields import MeshState
from surrogate.tasks.base import ModelSpec
from surrogate.tasks.mesh import (
    MeshData,
    MeshDataConfig,
    MeshEvalConfig,
    MeshExperimentConfig,
    MeshLoss,
    build_mesh_surrogate,
    load_mesh_surrogate,
    run_mesh_train,
)
from surrogate.training.trainer import TrainConfig

MESHES = Path(__file__).resolve().parents[2] / "shared" / "data" / "meshes"
# name -> (folder, velocity field, transitions held out)
PAPER = {
    "small_at_parity": {"step_speedup": 7.0, "parameter_ratio": 6.0},
    "large": {"all_rollout_error_reduction": 0.52},
    "source": "Garnier et al. 2025, as issue 23 quotes them",
}
DATASETS = {"cylinder": (MESHES / "cylinder_flow_vtu", "velocity", 1), "aneurysm": (MESHES / "aneurysm_vtu", "Vitesse", 0)}


def compare(name: str, specs: dict[str, ModelSpec], epochs: int, repeats: int, device: torch.device, tmp: Path) -> dict[str, Any]:
    """Train and time every model of `specs` on the mesh `name`; its rows, ratios and sizes."""
    folder, velocity, holdout = DATASETS[name]
    (store,) = convert_mesh("vtu", folder, tmp / f"{name}.h5", velocity=velocity)
    data_cfg = MeshDataConfig(paths=[str(store)], batch_size=1, holdout_steps=holdout)
    data = MeshData(data_cfg)
    schema = {"channel_names": data.channels, "n_spatial_dims": int(data.graphs[0].pos.shape[1])}
    rows: dict[str, dict[str, float]] = {}
    steps = {}
    batch = {"graph": Batch.from_data_list([data.window(data.train_windows[0])]).to(device)}
    for model_name, spec in specs.items():
        torch.manual_seed(0)
        model = build_mesh_surrogate(spec, schema, data.statistics()).to(device)
        loss = MeshLoss(model, data_cfg.noise_std)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(loss=loss, opt=opt) -> None:
            opt.zero_grad(set_to_none=True)
            loss(batch).backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()

        steps[model_name] = step
        rows[model_name] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_memory_MB": training_memory_bytes(step, device) / 2**20,
        }
    times = time_interleaved(steps, repeats, warmup=1)
    truth = data.data[0][0].permute(0, 2, 1)[None]  # (1, T, C, N)
    for model_name, spec in specs.items():
        rows[model_name]["step_s"] = median(times[model_name])
        cfg = MeshExperimentConfig(
            data=data_cfg,
            model=spec,
            eval=MeshEvalConfig(rollout_steps=5, export=False),
            train=TrainConfig(epochs=epochs, lr=1e-3, patience=epochs, tensorboard=False, device=str(device)),
            out_dir=str(tmp / name / model_name),
        )
        result = run_mesh_train(cfg, progress=False)
        rows[model_name]["rmse_1step"] = result.metrics[spec.name]["rmse_1step"]
        rows[model_name]["persistence_rmse_1step"] = result.metrics["persistence"]["rmse_1step"]
        model = load_mesh_surrogate(result.train.best_checkpoint).to(device)
        state = MeshState(truth[:, 0], torch.zeros(1), data.graphs[0], tuple(data.channels))
        pred = rollout(MeshSurrogateStepper(model, 1.0), state, truth.shape[1] - 1).fields.cpu()
        rows[model_name]["all_rollout_rmse"] = mesh_rollout_metrics(pred, truth)["all_rollout_rmse"]
        rows[model_name]["persistence_all_rollout_rmse"] = mesh_rollout_metrics(truth[:, :1].expand_as(truth), truth)["all_rollout_rmse"]
        rows[model_name]["train_time_s"] = result.train.history[-1]["time_s"]
    mgn = rows["meshgraphnet"]
    ratios = {
        model_name: {
            "step_speedup": mgn["step_s"] / gt["step_s"],
            "memory_ratio": mgn["train_memory_MB"] / gt["train_memory_MB"],
            "parameter_ratio": mgn["parameters"] / gt["parameters"],
            "error_ratio_1step": gt["rmse_1step"] / mgn["rmse_1step"],
            "all_rollout_error_ratio": gt["all_rollout_rmse"] / mgn["all_rollout_rmse"],
        }
        for model_name, gt in rows.items()
        if model_name != "meshgraphnet"
    }
    sizes = {
        "nodes": data.graphs[0].num_nodes,
        "edges": int(data.graphs[0].edge_index.shape[1]),
        "frames": int(truth.shape[1]),
        "train_windows": len(data.train_windows),
        "held_out_transitions": holdout,
        "errors": "held out" if holdout else "in-sample (one transition)",
        "epochs": epochs,
    }
    return {"sizes": sizes, "results": rows, "ratios": ratios}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meshes", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--gt-blocks", type=int, default=10, help="blocks of the larger transformer (10 at dim 128: about MeshGraphNet's size)")
    ap.add_argument("--name", default="mesh_models", help="result file in benchmarks/results: NAME_MESH.json per mesh")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    specs = {
        "graph_transformer": ModelSpec("graph_transformer", {"dim": 128, "heads": 4, "n_blocks": args.gt_blocks}),
        "graph_transformer_small": ModelSpec("graph_transformer", {"dim": 64, "heads": 4, "n_blocks": 4}),
        "graph_transformer_global": ModelSpec("graph_transformer", {"dim": 128, "heads": 4, "n_blocks": args.gt_blocks, "n_global": 4}),
        "meshgraphnet": ModelSpec("meshgraphnet", {"latent": 128, "n_steps": 15}),
    }
    console = Console(width=160)
    with tempfile.TemporaryDirectory() as tmp:
        for mesh in args.meshes:
            res = compare(mesh, specs, args.epochs, args.repeats, device, Path(tmp))
            sizes, rows = res["sizes"], res["results"]
            table = Table(title=f"{mesh}: {sizes['nodes']} nodes, {sizes['epochs']} epochs, errors {sizes['errors']}, {device}")
            keys = list(rows["meshgraphnet"])
            table.add_column("model")
            for k in keys:
                table.add_column(k)
            for model_name, row in rows.items():
                table.add_row(model_name, *(f"{row[k]:.4g}" for k in keys))
            console.print(table)
            for model_name, r in res["ratios"].items():
                console.print(
                    f"{model_name} vs MeshGraphNet (cost: MGN / ours; error: ours / MGN): "
                    + ", ".join(f"{k} {v:.3g}" for k, v in r.items())
                )
            models = {n: s.params for n, s in specs.items()}
            path = write_result(f"{args.name}_{mesh}", {"mesh": mesh, "models": models, "paper": PAPER, **res})
            console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
