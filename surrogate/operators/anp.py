"""Attentive neural process (Kim et al. 2019), the probabilistic backbone of ProbConserv's
experiments (Hansen et al. 2023): from context observations (x_i, y_i) of one function, a
Gaussian prediction of y at any target x.

As in ProbConserv's `attentive_neural_process`:
    latent path         (x, y) -> Linear -> 2 self-attention layers -> mean over contexts ->
                        ReLU Linear -> mu, log variance of z (reparameterized sample)
    deterministic path  (x, y) -> Linear -> 2 self-attention layers; targets attend to the
                        contexts by 2 cross-attention layers (queries and keys: projections of
                        the target and context locations, values: the context representations)
    decoder             [r, z, Linear(x_target)] -> 3 ReLU layers of width 3H -> mean and
                        sigma = softplus(.) + min_sigma
    attention           4 heads, scaled dot product without bias terms, the attended vector
                        concatenated with the query, a Linear, a residual connection, LayerNorm
Trained on the ELBO: the targets' log-likelihood minus KL(q(z | targets) || q(z | contexts)).
A prediction averages `n_samples` draws of z: the mean of the means, and the mean variance
plus the variance of the means.

For GPME the location is x = (t, x) and y = u. Shapes: context_x (B, Nc, dx), context_y
(B, Nc, dy), target_x (B, Nt, dx); outputs (B, Nt, dy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from surrogate.errors import InputError


@dataclass
class ANPConfig:
    """ProbConserv's ANP: hidden width H for every path (their `num_hidden`)."""

    dim_x: int = 2
    dim_y: int = 1
    hidden: int = 128
    heads: int = 4
    min_sigma: float = 1e-3


class ResidualAttention(nn.Module):
    """Multi-head attention whose output is [query, attended] -> Linear, plus the query, LayerNorm."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.out = nn.Linear(2 * dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, key: Tensor, value: Tensor, query: Tensor) -> Tensor:
        """key, value (B, Nk, D), query (B, Nq, D) -> (B, Nq, D)."""
        h = self.heads
        q, k, v = (lin(t).unflatten(-1, (h, -1)).transpose(1, 2) for lin, t in ((self.q, query), (self.k, key), (self.v, value)))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)  # (B, H, Nq, Nk)
        mixed = (att @ v).transpose(1, 2).flatten(2)  # (B, Nq, D)
        return self.norm(query + self.out(torch.cat([query, mixed], dim=-1)))


class AttentiveNeuralProcess(nn.Module):
    """See the module docstring; `forward` gives the predictive mean and variance."""

    def __init__(self, dim_x: int = 2, dim_y: int = 1, hidden: int = 128, heads: int = 4, min_sigma: float = 1e-3) -> None:
        super().__init__()
        if hidden % heads:
            raise InputError(f"ANP: hidden {hidden} must be divisible by heads {heads}")
        self.min_sigma = min_sigma
        self.latent_in = nn.Linear(dim_x + dim_y, hidden)
        self.latent_self = nn.ModuleList(ResidualAttention(hidden, heads) for _ in range(2))
        self.latent_hidden = nn.Linear(hidden, hidden)
        self.latent_stats = nn.Linear(hidden, 2 * hidden)
        self.det_in = nn.Linear(dim_x + dim_y, hidden)
        self.det_self = nn.ModuleList(ResidualAttention(hidden, heads) for _ in range(2))
        self.det_cross = nn.ModuleList(ResidualAttention(hidden, heads) for _ in range(2))
        self.context_key, self.target_query = nn.Linear(dim_x, hidden), nn.Linear(dim_x, hidden)
        self.decoder_x = nn.Linear(dim_x, hidden)
        self.decoder = nn.Sequential(*(m for _ in range(3) for m in (nn.Linear(3 * hidden, 3 * hidden), nn.ReLU())))
        self.decoder_out = nn.Linear(3 * hidden, 2 * dim_y)

    def latent(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log variance (B, H) of z given observations x (B, N, dx), y (B, N, dy)."""
        s = self.latent_in(torch.cat([x, y], dim=-1))
        for att in self.latent_self:
            s = att(s, s, s)
        stats = self.latent_stats(torch.relu(self.latent_hidden(s.mean(1))))
        mu, log_var = stats.chunk(2, dim=-1)
        return mu, log_var

    def deterministic(self, context_x: Tensor, context_y: Tensor, target_x: Tensor) -> Tensor:
        """Each target's representation (B, Nt, H) from the contexts."""
        r = self.det_in(torch.cat([context_x, context_y], dim=-1))
        for att in self.det_self:
            r = att(r, r, r)
        query, keys = self.target_query(target_x), self.context_key(context_x)
        for att in self.det_cross:
            query = att(keys, r, query)
        return query

    def decode(self, r: Tensor, target_x: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and sigma (B, Nt, dy) of the targets from their representations r and a latent sample z (B, H)."""
        hidden = torch.cat([r, z[:, None].expand(-1, target_x.shape[1], -1), self.decoder_x(target_x)], dim=-1)
        mean, raw = self.decoder_out(self.decoder(hidden)).chunk(2, dim=-1)
        return mean, F.softplus(raw) + self.min_sigma

    def elbo_loss(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor) -> tuple[Tensor, Tensor]:
        """Negative ELBO per target value, -mean log p(target_y) + KL(q(z|targets) || q(z|contexts)) / targets,
        and the predicted mean (B, Nt, dy) it scored (for penalties on it)."""
        mu_c, lv_c = self.latent(context_x, context_y)
        mu_t, lv_t = self.latent(target_x, target_y)
        z = mu_t + torch.randn_like(mu_t) * (0.5 * lv_t).exp()
        mean, sigma = self.decode(self.deterministic(context_x, context_y, target_x), target_x, z)
        nll = -torch.distributions.Normal(mean, sigma).log_prob(target_y).mean()
        kl = 0.5 * ((lv_t.exp() + (mu_t - mu_c).square()) / lv_c.exp() - 1 + lv_c - lv_t).sum(-1).mean()
        return nll + kl / target_y[0].numel(), mean

    def forward(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, n_samples: int = 16) -> tuple[Tensor, Tensor]:
        """Predictive mean and variance (B, Nt, dy), averaged over `n_samples` draws of z from the contexts' posterior."""
        mu, log_var = self.latent(context_x, context_y)
        r = self.deterministic(context_x, context_y, target_x)
        means, variances = [], []
        for _ in range(n_samples):
            mean, sigma = self.decode(r, target_x, mu + torch.randn_like(mu) * (0.5 * log_var).exp())
            means.append(mean)
            variances.append(sigma.square())
        m = torch.stack(means)
        return m.mean(0), torch.stack(variances).mean(0) + m.var(0, unbiased=False)
