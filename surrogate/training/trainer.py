"""The one training loop, for any source of window batches (offline store or online stream)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor

from surrogate.datasets.atomic import atomic_path
from surrogate.device import resolve_device
from surrogate.errors import InputError
from surrogate.operators.surrogate import Surrogate
from surrogate.training.checkpoint import load_checkpoint, save_checkpoint


@dataclass
class TrainConfig:
    """Optimization settings. Early stopping watches the validation rollout error."""

    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    grad_clip: float = 1.0
    amp: bool = True
    patience: int = 5
    max_time_s: float = 0.0
    seed: int = 0
    device: str = "auto"
    tensorboard: bool = True
    input_noise: float = 0.0  # std of Gaussian noise on the normalized inputs: trains the model to undo its own drift
    compile: bool = False  # torch.compile the operator for training and the evaluation rollouts

    def __post_init__(self) -> None:
        if self.scheduler not in ("cosine", "constant"):
            raise InputError(f"train.scheduler {self.scheduler!r}: expected 'cosine' or 'constant'")
        if self.epochs < 1 or self.lr <= 0:
            raise InputError(f"train: need epochs >= 1 and lr > 0, got {self.epochs}, {self.lr}")
        if self.input_noise < 0:
            raise InputError(f"train.input_noise must be >= 0 (a standard deviation in normalized units), got {self.input_noise}")


@dataclass
class TrainResult:
    best_checkpoint: Path
    last_checkpoint: Path
    epochs_run: int
    best_val: float
    stopped: str
    history: list[dict[str, float]] = field(default_factory=list)


def compile_operator(model: torch.nn.Module) -> None:
    """torch.compile the model's operator in place (`nn.Module.compile`: the state dict keeps its
    keys, so checkpoints load either way); the normalization around it stays eager."""
    model.get_submodule("operator").compile()


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over fluid cells; pred, target (B, C, *space), mask (B, 1, *space)."""
    sq = (pred - target).square() * mask
    return sq.sum() / (mask.sum() * pred.shape[1]).clamp_min(1)


class UnrolledLoss(torch.nn.Module):
    """Loss of the model rolled out over every target step of the window, in normalized units.

    With `input_noise` > 0 the (normalized) input steps are perturbed by Gaussian noise of that
    standard deviation while the targets stay clean, so that the model learns to pull a
    slightly wrong state back towards the data, the error its own rollouts feed it
    (Sanchez-Gonzalez et al. 2020; Stachenfeld et al. 2022 for 3D turbulence).

    A module, so that DistributedDataParallel can wrap it and synchronize the gradients.
    Shapes: batch x (B, k, C, *space), y (B, m, C, *space), params (B, P), mask (B, 1, *space).
    """

    def __init__(self, model: Surrogate, input_noise: float = 0.0) -> None:
        super().__init__()
        self.model, self.input_noise = model, input_noise

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        x, y, params, mask = (batch[k] for k in ("x", "y", "params", "mask"))
        norm = self.model.normalizer
        xn, yn, pn = norm.encode(x), norm.encode(y), norm.encode_params(params)
        if self.input_noise > 0 and self.model.training:
            xn = xn + self.input_noise * torch.randn_like(xn) * mask[:, None]
        loss = x.new_zeros(())
        for j in range(yn.shape[1]):
            pred = self.model.forward_normalized(xn, pn, mask)  # (B, C, *space)
            loss = loss + masked_mse(pred, yn[:, j], mask)
            xn = torch.cat([xn[:, 1:], pred[:, None]], dim=1)
        return loss / yn.shape[1]


def world() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def tensorboard_writer(out: Path, enabled: bool) -> Any:
    """A TensorBoard SummaryWriter in `out/tensorboard` when enabled and installed, else None."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the optional dependency is absent
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(h) + "\n" for h in history))


def train(
    model: torch.nn.Module,
    source: Iterable[dict[str, Tensor]],
    cfg: TrainConfig,
    out_dir: str | Path,
    meta: dict[str, Any],
    validate: Callable[[Any], dict[str, float]] | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    loss: torch.nn.Module | None = None,
) -> TrainResult:
    """Train `model` on `source` with AdamW; checkpoint every epoch; stop early on validation.

    `meta` (model name and config, data schema) goes into every checkpoint so that the model
    can be rebuilt from it alone. `validate(model)` returns metrics with key `val` (lower is
    better); without it the training loss is watched. `resume` continues from a `last.pt`:
    the next epochs see the same batches and give the same losses as an uninterrupted run.
    Metrics are written to `out_dir/metrics.jsonl`, one line per epoch. `loss` maps a batch
    (a dict of tensors or graph batches) to the loss; the default unrolls a grid surrogate.
    """
    out = Path(out_dir)
    rank, world_size = world()
    main_rank = rank == 0
    if main_rank:
        out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", rank % torch.cuda.device_count())
    torch.manual_seed(cfg.seed)
    model.to(device)
    if cfg.compile:
        compile_operator(model)
    normalizer = model.get_submodule("normalizer")  # every task's model carries its normalization, saved beside the weights
    loss_fn: torch.nn.Module
    if loss is not None:
        loss_fn = loss
    elif isinstance(model, Surrogate):
        loss_fn = UnrolledLoss(model, cfg.input_noise)
    else:
        raise TypeError(f"train: a {type(model).__name__} needs its task's loss; only grid Surrogates have a default")
    if world_size > 1:
        loss_fn = torch.nn.parallel.DistributedDataParallel(loss_fn, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(source)  # type: ignore[arg-type]
    total = cfg.epochs * steps_per_epoch
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        if cfg.scheduler == "cosine"
        else torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0)
    )
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history: list[dict[str, float]] = []
    epoch, step, best, bad_epochs = 0, 0, math.inf, 0
    if resume is not None:
        ck = load_checkpoint(resume, expect_model=meta["model"]["name"])
        try:
            model.load_state_dict(ck["state_dict"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise InputError(
                f"{resume}: cannot resume this model from it (written by {ck.get('world_size', '?')} process(es)): "
                f"{type(e).__name__}: {str(e)[:300]}"
            ) from None
        source.load_state_dict(ck["source"])  # type: ignore[attr-defined]
        torch.set_rng_state(ck["rng"])
        epoch, step, best, bad_epochs = ck["epoch"], ck["step"], ck["best_val"], ck["bad_epochs"]
        history = list(ck["history"])

    best_path, last_path = out / "best.pt", out / "last.pt"
    board = tensorboard_writer(out, cfg.tensorboard) if main_rank else None
    stopped = "epochs"
    t_start = time.perf_counter()
    bar = Progress(
        TextColumn("[bold]train[/] epoch {task.fields[epoch]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("loss {task.fields[loss]:.3e}  val {task.fields[val]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not (progress and main_rank),
    )
    with bar:
        task = bar.add_task("train", total=total, completed=step, epoch=epoch, loss=math.nan, val="-")
        while epoch < cfg.epochs:
            model.train()
            losses = []
            for batch in source:
                ctx = torch.autocast("cuda", dtype=torch.float16) if use_amp else nullcontext()
                with ctx:
                    value = loss_fn({k: v.to(device) for k, v in batch.items()})
                if not torch.isfinite(value):
                    raise FloatingPointError(f"training loss became {value.item()} at step {step}; lower the lr")
                opt.zero_grad(set_to_none=True)
                scaler.scale(value).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
                sched.step()
                step += 1
                losses.append(value.item())
                bar.update(task, advance=1, loss=losses[-1])
            epoch += 1
            mean_loss = torch.tensor(sum(losses) / len(losses), dtype=torch.float64)
            if world_size > 1:  # the epoch loss over every rank's batches
                dist.all_reduce(mean_loss)
                mean_loss /= world_size
            record: dict[str, float] = {"epoch": epoch, "step": step, "train_loss": float(mean_loss)}
            record["lr"] = opt.param_groups[0]["lr"]
            if validate is not None:
                model.eval()
                record.update(validate(model))
            record["time_s"] = time.perf_counter() - t_start
            history.append(record)
            watched = record.get("val", record["train_loss"])
            improved = watched < best
            best, bad_epochs = (watched, 0) if improved else (best, bad_epochs + 1)
            bar.update(task, epoch=epoch, val=f"{watched:.3e}")
            payload = {
                **meta,
                "state_dict": model.state_dict(),
                "normalizer": dict(normalizer.state_dict()),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "source": source.state_dict(),  # type: ignore[attr-defined]
                "rng": torch.get_rng_state(),
                "epoch": epoch,
                "step": step,
                "world_size": world_size,
                "best_val": best,
                "bad_epochs": bad_epochs,
                "history": history,
            }
            if board is not None:
                for key, value in record.items():
                    if key not in ("epoch", "step"):
                        board.add_scalar(key, value, epoch)
                board.flush()
            if main_rank:
                save_checkpoint(last_path, payload)
                if improved:
                    save_checkpoint(best_path, payload)
                _write_history(out / "metrics.jsonl", history)
            out_of_time = bool(cfg.max_time_s) and time.perf_counter() - t_start > cfg.max_time_s
            if world_size > 1:  # rank 0's clock decides, so that every rank stops together
                flag = torch.tensor([float(out_of_time)])
                dist.broadcast(flag, 0)
                out_of_time = bool(flag.item())
                dist.barrier()
            if bad_epochs >= cfg.patience:
                stopped = f"early stop: no improvement in {cfg.patience} epochs"
                break
            if out_of_time:
                stopped = f"time budget of {cfg.max_time_s:.0f} s reached"
                break
    if board is not None:
        board.close()
    return TrainResult(best_path, last_path, epoch, best, stopped, history)
