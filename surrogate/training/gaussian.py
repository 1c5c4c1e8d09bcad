"""Fitting probabilistic operators (mean and variance) by Gaussian negative log-likelihood.

`GaussianRolloutLoss` is the trainer's loss for a `ProbabilisticSurrogate` (`surrogate
train` with a Gaussian operator): the NLL of every unrolled target step, each ensemble member
on its own, the mean fed to the next step. ProbConserv's update is not applied in training,
as in Hansen et al.: it conditions the trained model's predictions at test time.
`fit_gaussian` fits a bare operator on normalized pairs from Python, optionally with a
soft-constraint penalty (the "soft constraint" baseline of Hansen et al.).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from surrogate.operators.ensemble import DeepEnsemble
from surrogate.operators.gaussian_fno import gaussian_nll_loss, split_gaussian
from surrogate.operators.probabilistic_surrogate import ProbabilisticSurrogate
from surrogate.training.trainer import UnrolledLoss


class GaussianRolloutLoss(UnrolledLoss):
    """Masked mean Gaussian NLL (constant dropped) of each unrolled step, normalized units."""

    def __init__(self, model: ProbabilisticSurrogate, input_noise: float = 0.0) -> None:
        super().__init__(model, input_noise)
        self.gaussian_model = model

    def step_loss(self, xn: Tensor, pn: Tensor, mask: Tensor, sn: Tensor | None, target: Tensor) -> tuple[Tensor, Tensor]:
        means, nlls = [], []
        for mean, var in self.gaussian_model.member_gaussians_normalized(xn, pn, mask, sn):
            nll = 0.5 * ((target - mean).square() / var + var.log()) * mask
            nlls.append(nll.sum() / (mask.sum() * mean.shape[1]).clamp_min(1))
            means.append(mean)
        return torch.stack(nlls).mean(), torch.stack(means).mean(0)


def fit_gaussian(
    model: nn.Module,
    batches: Callable[[], Iterable[tuple[Tensor, ...]]],
    epochs: int,
    lr: float = 1e-3,
    penalty: Callable[..., Tensor] | None = None,
    seed: int = 0,
) -> list[float]:
    """AdamW with a cosine schedule on the NLL (each ensemble member on its own NLL).

    `batches()` yields (x (B, C_in, *space), params (B, P), target (B, C_out, *space), *extra) per
    epoch; `penalty(mean, target, params, *extra)` is added to the loss when given (extra: e.g.
    the conservation law's right-hand side of each sample). Returns the epoch losses.
    """
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    n_batches = sum(1 for _ in batches())
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * n_batches)
    history = []
    model.train()
    for _ in range(epochs):
        total = 0.0
        for x, params, target, *extra in batches():
            outs = model.member_outputs(x, params) if isinstance(model, DeepEnsemble) else [model(x, params)]
            loss = torch.stack([gaussian_nll_loss(o, target) for o in outs]).mean()
            if penalty is not None:
                loss = loss + torch.stack([penalty(split_gaussian(o)[0], target, params, *extra) for o in outs]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item()
        history.append(total / n_batches)
    model.eval()
    return history
