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
from torch import Tensor

from surrogate.datasets.atomic import atomic_path
from surrogate.device import resolve_device
from surrogate.errors import InputError
from surrogate.operators.surrogate import Surrogate
from surrogate.training.checkpoint import load_checkpoint, save_checkpoint
from surrogate.training.progress import TrainProgress, minutes
from surrogate.training.schedule import SCHEDULES, budget_progress, learning_rate

SUMMARY_FILE = "train_summary.json"  # beside the checkpoints: how the run ended


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
        if self.scheduler not in SCHEDULES:
            raise InputError(f"train.scheduler {self.scheduler!r}: expected one of {list(SCHEDULES)}")
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
    train_s: float = 0.0
    warnings: list[str] = field(default_factory=list)


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
    Shapes: batch x (B, k, C, *space), y (B, m, C, *space), params (B, P), mask (B, 1, *space);
    optional static (B, S, *space) and param_steps (B, m, P) (each unrolled step's parameters,
    when they vary in time).
    """

    def __init__(self, model: Surrogate, input_noise: float = 0.0) -> None:
        super().__init__()
        self.model, self.input_noise = model, input_noise

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        x, y, params, mask = (batch[k] for k in ("x", "y", "params", "mask"))
        norm = self.model.normalizer
        xn, yn, pn = norm.encode(x), norm.encode(y), norm.encode_params(params)
        sn = self.model.encode_static(batch.get("static"))
        steps = batch.get("param_steps")
        if self.input_noise > 0 and self.model.training:
            xn = xn + self.input_noise * torch.randn_like(xn) * mask[:, None]
        loss = x.new_zeros(())
        for j in range(yn.shape[1]):
            if steps is not None:
                pn = norm.encode_params(steps[:, j])
            step_loss, pred = self.step_loss(xn, pn, mask, sn, yn[:, j])  # pred (B, C, *space)
            loss = loss + step_loss
            xn = torch.cat([xn[:, 1:], pred[:, None]], dim=1)
        return loss / yn.shape[1]

    def step_loss(self, xn: Tensor, pn: Tensor, mask: Tensor, sn: Tensor | None, target: Tensor) -> tuple[Tensor, Tensor]:
        """One unrolled step: its loss and the prediction fed to the next (normalized units)."""
        pred = self.model.forward_normalized(xn, pn, mask, sn)
        return masked_mse(pred, target, mask), pred


def nonfinite_loss_message(batch: dict[str, Any], value: float, step: int) -> str:
    """Why the loss is not finite: the batch's data (NaN/Inf in a store), or the optimization."""
    bad = [k for k, v in batch.items() if isinstance(v, Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        return (
            f"training batch at step {step} holds NaN/Inf in {bad}: the training data are not finite "
            "(`surrogate info FILE` scans a store and names the fields)"
        )
    return f"the training loss became {value} at step {step} on finite data: lower train.lr (or train.grad_clip)"


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
    clock: Callable[[], float] = time.perf_counter,
) -> TrainResult:
    """Train `model` on `source` with AdamW; checkpoint every epoch; stop early on validation.

    `meta` (model name and config, data schema) goes into every checkpoint so that the model
    can be rebuilt from it alone. `validate(model)` returns metrics with key `val` (lower is
    better); without it the training loss is watched. `resume` continues from a `last.pt`:
    the next epochs see the same batches and give the same losses as an uninterrupted run.
    Metrics are written to `out_dir/metrics.jsonl`, one line per epoch. `loss` maps a batch
    (a dict of tensors or graph batches) to the loss; the default unrolls a grid surrogate.

    `cfg.max_time_s` bounds this invocation's training time, validation included (a batch
    job's wall limit: each resumed part gets the budget anew): it is checked after every
    optimizer step, and a run out of time validates and checkpoints the part of the epoch it
    ran, then stops. The learning-rate schedule runs over the budget actually used
    (`schedule.budget_progress`). `clock` is the time source in seconds.
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
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history: list[dict[str, float]] = []
    epoch, step, best, bad_epochs, spent_s = 0, 0, math.inf, 0, 0.0
    if resume is not None:
        ck = load_checkpoint(resume, expect_model=meta["model"]["name"])
        try:
            model.load_state_dict(ck["state_dict"])
            opt.load_state_dict(ck["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise InputError(
                f"{resume}: cannot resume this model from it (written by {ck.get('world_size', '?')} process(es)): "
                f"{type(e).__name__}: {str(e)[:300]}"
            ) from None
        source.load_state_dict(ck["source"])  # type: ignore[attr-defined]
        torch.set_rng_state(ck["rng"])
        epoch, step, best, bad_epochs = ck["epoch"], ck["step"], ck["best_val"], ck["bad_epochs"]
        spent_s = float(ck.get("train_time_s", 0.0))
        history = list(ck["history"])

    best_path, last_path = out / "best.pt", out / "last.pt"
    board = tensorboard_writer(out, cfg.tensorboard) if main_rank else None
    stopped, warnings = (f"all {cfg.epochs} epochs run" if cfg.epochs > 1 else "its one epoch run"), []
    t_start = clock()

    def elapsed() -> float:
        return clock() - t_start

    def out_of_time() -> bool:
        """Whether the time budget is spent; rank 0's clock decides, so that every rank stops together."""
        if not cfg.max_time_s:
            return False
        flag = torch.tensor([float(elapsed() >= cfg.max_time_s)])
        if world_size > 1:
            dist.broadcast(flag, 0)
        return bool(flag.item())

    bar = TrainProgress(cfg.epochs, steps_per_epoch, clock, progress and main_rank, max_time_s=cfg.max_time_s)
    with bar:
        bar.resume_at(epoch, step)
        while epoch < cfg.epochs and not out_of_time():
            model.train()
            losses = []
            for batch in source:
                for group in opt.param_groups:
                    group["lr"] = learning_rate(cfg.lr, cfg.scheduler, budget_progress(step, total, elapsed(), cfg.max_time_s))
                ctx = torch.autocast("cuda", dtype=torch.float16) if use_amp else nullcontext()
                with ctx:
                    value = loss_fn({k: v.to(device) for k, v in batch.items()})
                if not torch.isfinite(value):
                    raise InputError(nonfinite_loss_message(batch, float(value), step))
                opt.zero_grad(set_to_none=True)
                scaler.scale(value).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
                step += 1
                losses.append(value.item())
                bar.step(losses[-1])
                if out_of_time():
                    break
            epoch += 1
            mean_loss = torch.tensor(sum(losses) / len(losses), dtype=torch.float64)
            if world_size > 1:  # the epoch loss over every rank's batches
                dist.all_reduce(mean_loss)
                mean_loss /= world_size
            record: dict[str, float] = {"epoch": epoch, "step": step, "train_loss": float(mean_loss)}
            record["lr"] = opt.param_groups[0]["lr"]
            record["epoch_fraction"] = len(losses) / steps_per_epoch
            if validate is not None:
                model.eval()
                record.update(validate(model))
            record["time_s"] = spent_s + elapsed()  # training time of the run, its resumed parts together
            history.append(record)
            watched = record.get("val", record["train_loss"])
            if not math.isfinite(watched):
                raise InputError(
                    f"the validation error is {watched} after epoch {epoch}: the validation data hold NaN/Inf "
                    "(`surrogate info FILE` scans a store) or the model diverged (lower train.lr)"
                )
            improved = watched < best
            best, bad_epochs = (watched, 0) if improved else (best, bad_epochs + 1)
            bar.epoch_end(epoch, watched)
            payload = {
                **meta,
                "state_dict": model.state_dict(),
                "normalizer": dict(normalizer.state_dict()),
                "optimizer": opt.state_dict(),
                "source": source.state_dict(),  # type: ignore[attr-defined]
                "rng": torch.get_rng_state(),
                "epoch": epoch,
                "step": step,
                "world_size": world_size,
                "best_val": best,
                "bad_epochs": bad_epochs,
                "history": history,
                "train_time_s": record["time_s"],
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
            if world_size > 1:
                dist.barrier()
            if bad_epochs >= cfg.patience:
                stopped = f"early stop: no improvement in {cfg.patience} epochs"
                break
        if epoch < cfg.epochs and not stopped.startswith("early"):  # the budget ended it
            stopped = f"time budget of {cfg.max_time_s:g} s reached after {step} of {total} steps"
    if board is not None:
        board.close()
    if epoch == 1 and cfg.scheduler == "cosine" and history and history[-1]["lr"] < 0.05 * cfg.lr:
        warnings.append(
            "the cosine learning-rate schedule annealed to zero within the first epoch; "
            "train.epochs or train.max_time_s larger would let the model train further"
        )
    for text in warnings:
        bar.say(f"warning: {text}")
    train_s = elapsed()
    bar.say(f"training took {minutes(train_s)} ({stopped})")
    if main_rank:  # what the report's header says of the run, beside its checkpoints
        summary = {
            "stopped": stopped,
            "epochs": epoch,
            "steps": step,
            "train_s": history[-1]["time_s"] if history else spent_s,
            "device": str(device) + (f" x {world_size} processes" if world_size > 1 else ""),
            "parameters": sum(p.numel() for p in model.parameters()),
            "warnings": warnings,
        }
        with atomic_path(out / SUMMARY_FILE) as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
    return TrainResult(best_path, last_path, epoch, best, stopped, history, train_s, warnings)
