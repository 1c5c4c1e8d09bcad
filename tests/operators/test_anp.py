"""The attentive neural process: shapes, the predictive mixture, and that it learns a function
family from context points (beats the prior mean, and sharpens with more contexts)."""

import math

import pytest
import torch

from surrogate.errors import InputError
from surrogate.operators.anp import AttentiveNeuralProcess


def sines(n: int, points: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x (n, points, 1) in [-1, 1], y = a sin(3 x + c) with a random amplitude and phase per function."""
    x = torch.rand(n, points, 1, generator=gen) * 2 - 1
    a, c = torch.rand(n, 1, 1, generator=gen) + 0.5, torch.rand(n, 1, 1, generator=gen) * math.pi
    return x, a * torch.sin(3 * x + c)


def test_anp_learns_a_function_family_from_contexts():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = AttentiveNeuralProcess(dim_x=1, dim_y=1, hidden=32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        x, y = sines(16, 40, gen)
        n_ctx = int(torch.randint(3, 21, (1,), generator=gen))
        loss, mean = model.elbo_loss(x[:, :n_ctx], y[:, :n_ctx], x, y)
        assert mean.shape == (16, 40, 1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, y = sines(64, 60, gen)
    with torch.no_grad():
        mean, var = model(x[:, :20], y[:, :20], x[:, 20:], n_samples=8)
        few_mean, few_var = model(x[:, :3], y[:, :3], x[:, 20:], n_samples=8)
    assert mean.shape == var.shape == (64, 40, 1) and bool((var > 0).all())
    err = (mean - y[:, 20:]).square().mean()
    assert err < 0.1 * y.square().mean(), float(err)  # far better than the prior mean 0
    assert var.mean() < few_var.mean()  # more contexts: less uncertainty
    assert err < (few_mean - y[:, 20:]).square().mean()


def test_bad_width():
    with pytest.raises(InputError, match="hidden 30 must be divisible by heads 4"):
        AttentiveNeuralProcess(hidden=30)
