"""enf2enf: steady fields over varying geometries through equivariant neural fields.

A geometry is a point cloud with its signed distance (SDF). It is encoded as M latents
(pose p_i, context c_i), a latent point cloud fitted to the geometry as in equivariant
neural fields: poses start at farthest-point samples of the geometry's points, contexts at a
learned initialization, and a few inner gradient steps on the SDF reconstruction move both
(contexts with `inner_lr`, poses with `pose_lr`, in domain units per unit gradient). The
steps stay in the autograd graph (meta-learning), so the outer loss trains the
initialization and the decoders through them. The SDF error depends on positions only
through x - p_i, so its gradient with respect to the poses is the same for a translated
geometry: fitted poses move with the geometry. Global parameters (inflow,
angle, ...) are added to every context. Latents then exchange information by self-attention
whose logits carry an MLP of the relative poses p_i - p_j, and the fields at any query point
x come from cross-attention to its k nearest latents, conditioned on x - p_i only, with a
Gaussian window on the logits. With `use_query_sdf` the query's own signed distance (an
invariant, known for any point from the boundary) is embedded into its attention query, as
airfoil surrogates feed the wall distance. Only differences of positions enter, so shifting
geometry and queries together leaves the output unchanged (translation equivariance by
construction), and the field can be queried on any point set (a finer mesh than the
training one).

Shapes:
    points  (B, S, d)  geometry sample points      sdf (B, S)
    params  (B, P)                                 queries (B, Q, d)   query_sdf (B, Q)
    out     (B, Q, out_channels)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from surrogate.errors import InputError
from surrogate.operators.mlp import mlp


@dataclass
class Enf2EnfConfig:
    """`n_dims`, `out_channels`, `n_params` come from the data; `sigma` in domain units."""

    n_dims: int = 2
    out_channels: int = 3
    n_params: int = 0
    n_latents: int = 16
    latent_dim: int = 64
    heads: int = 4
    k_nearest: int = 4
    sigma: float = 0.25
    inner_steps: int = 3
    inner_lr: float = 1.0
    pose_lr: float = 0.05
    n_self_blocks: int = 2
    use_query_sdf: bool = True
    sdf_weight: float = 1.0


def farthest_points(points: Tensor, m: int) -> Tensor:
    """Indices (B, m) of farthest-point samples, starting from each cloud's first point."""
    b, s, _ = points.shape
    idx = torch.zeros(b, m, dtype=torch.long, device=points.device)
    dist = torch.full((b, s), float("inf"), device=points.device)
    for i in range(1, m):
        last = points.gather(1, idx[:, i - 1, None, None].expand(-1, 1, points.shape[2]))  # (B, 1, d)
        dist = torch.minimum(dist, (points - last).square().sum(-1))
        idx[:, i] = dist.argmax(1)
    return idx


class RelativeEmbedding(nn.Module):
    """Random Fourier features of a relative position, then a linear map: (..., d) -> (..., D)."""

    def __init__(self, n_dims: int, dim: int, scale: float) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.randn(n_dims, dim // 2) * 2 * math.pi / scale)
        self.proj = nn.Linear(dim, dim)

    def forward(self, r: Tensor) -> Tensor:
        phase = r @ self.freqs
        return self.proj(torch.cat([phase.sin(), phase.cos()], dim=-1))


class LocalCrossAttention(nn.Module):
    """Query points attend to their k nearest latents, conditioned on x - p_i only.

    logits = <W_q g_i, W_k c_i> / sqrt(D_h) - |x - p_i|^2 / sigma^2,
    value  = W_v c_i * (1 + W_g g_i),    g_i = embed(x - p_i) [+ embed(sdf(x))].
    """

    def __init__(self, n_dims: int, dim: int, heads: int, k: int, sigma: float, out: int, query_sdf: bool = False) -> None:
        super().__init__()
        self.heads, self.k, self.sigma = heads, k, sigma
        self.rel = RelativeEmbedding(n_dims, dim, sigma)
        self.sdf_embed = mlp([1, dim, dim], layer_norm=False) if query_sdf else None
        self.q, self.kv, self.gate = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        self.out = mlp([dim, dim, out], layer_norm=False)

    def forward(self, x: Tensor, poses: Tensor, context: Tensor, x_sdf: Tensor | None = None) -> Tensor:
        """x (B, Q, d), poses (B, M, d), context (B, M, D), x_sdf (B, Q) -> (B, Q, out)."""
        k = min(self.k, poses.shape[1])
        near = torch.cdist(x, poses).topk(k, dim=-1, largest=False).indices  # (B, Q, k)

        def gather(t: Tensor) -> Tensor:  # (B, M, D) -> the k nearest of each query (B, Q, k, D)
            return t.gather(1, near.flatten(1)[..., None].expand(-1, -1, t.shape[-1])).unflatten(1, near.shape[1:])

        r = x[:, :, None] - gather(poses)  # (B, Q, k, d)
        g = self.rel(r)  # (B, Q, k, D)
        if self.sdf_embed is not None:  # the query's own wall distance: an invariant, it keeps equivariance
            g = g + self.sdf_embed(x_sdf[..., None] / self.sigma)[:, :, None]
        key, val = self.kv(gather(context)).chunk(2, dim=-1)  # (B, Q, k, D) each
        val = val * (1 + self.gate(g))
        h = self.heads
        q = self.q(g).unflatten(-1, (h, -1))  # (B, Q, k, H, Dh)
        logits = (q * key.unflatten(-1, (h, -1))).sum(-1) / math.sqrt(q.shape[-1])  # (B, Q, k, H)
        logits = logits - (r.square().sum(-1) / self.sigma**2)[..., None]
        w = torch.softmax(logits, dim=2)
        mixed = (w[..., None] * val.unflatten(-1, (h, -1))).sum(2).flatten(-2)  # (B, Q, D)
        return self.out(mixed)


class LatentSelfAttention(nn.Module):
    """Pre-norm attention among latents with a learned bias of the relative poses, and an MLP."""

    def __init__(self, n_dims: int, dim: int, heads: int, scale: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.bias = nn.Sequential(RelativeEmbedding(n_dims, dim, scale), nn.GELU(), nn.Linear(dim, heads))
        self.mlp = mlp([dim, 2 * dim, dim], layer_norm=False)

    def forward(self, poses: Tensor, c: Tensor) -> Tensor:
        q, k, v = (t.unflatten(-1, (self.heads, -1)) for t in self.qkv(self.norm1(c)).chunk(3, dim=-1))  # (B, M, H, Dh)
        logits = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(q.shape[-1])
        logits = logits + self.bias(poses[:, :, None] - poses[:, None]).permute(0, 3, 1, 2)  # (B, H, M, M)
        c = c + self.proj(torch.einsum("bhij,bjhd->bihd", torch.softmax(logits, -1), v).flatten(-2))
        return c + self.mlp(self.norm2(c))


class Enf2Enf(nn.Module):
    def __init__(
        self,
        n_dims: int = 2,
        out_channels: int = 3,
        n_params: int = 0,
        n_latents: int = 16,
        latent_dim: int = 64,
        heads: int = 4,
        k_nearest: int = 4,
        sigma: float = 0.25,
        inner_steps: int = 3,
        inner_lr: float = 1.0,
        pose_lr: float = 0.05,
        n_self_blocks: int = 2,
        use_query_sdf: bool = True,
        sdf_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if latent_dim % heads or latent_dim % 2:
            raise InputError(f"enf2enf: latent_dim {latent_dim} must be even and divisible by heads {heads}")
        if n_latents < 1 or k_nearest < 1 or sigma <= 0 or inner_steps < 0 or pose_lr < 0 or sdf_weight < 0:
            raise InputError(
                f"enf2enf: need n_latents, k_nearest >= 1, sigma > 0, inner_steps, pose_lr, sdf_weight >= 0; "
                f"got {n_latents}, {k_nearest}, {sigma}, {inner_steps}, {pose_lr}, {sdf_weight}"
            )
        self.n_latents, self.inner_steps, self.inner_lr, self.sdf_weight = n_latents, inner_steps, inner_lr, sdf_weight
        self.pose_lr = pose_lr
        self._sdf_error: Tensor | None = None
        self.context0 = nn.Parameter(torch.zeros(latent_dim))
        self.sdf_decoder = LocalCrossAttention(n_dims, latent_dim, heads, k_nearest, sigma, 1)
        self.params = nn.Linear(n_params, latent_dim) if n_params else None
        self.blocks = nn.ModuleList(LatentSelfAttention(n_dims, latent_dim, heads, sigma) for _ in range(n_self_blocks))
        self.field_decoder = LocalCrossAttention(n_dims, latent_dim, heads, k_nearest, sigma, out_channels, use_query_sdf)

    def encode_geometry(self, points: Tensor, sdf: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Fitted poses (B, M, d), fitted contexts (B, M, D) and the SDF reconstruction error per step (steps + 1,)."""
        idx = farthest_points(points, self.n_latents)
        poses = points.gather(1, idx[..., None].expand(-1, -1, points.shape[2]))
        c = self.context0.expand(points.shape[0], self.n_latents, -1)
        if not torch.is_grad_enabled():  # the inner fit needs gradients even in evaluation
            c = c.detach()
        errors = []
        with torch.enable_grad():
            c = c if c.requires_grad else c.clone().requires_grad_(True)
            poses = poses.detach().requires_grad_(self.pose_lr > 0)
            for _ in range(self.inner_steps):
                err = (self.sdf_decoder(points, poses, c)[..., 0] - sdf).square().mean()
                errors.append(err.detach())
                wrt = (c, poses) if self.pose_lr > 0 else (c,)
                grads = torch.autograd.grad(err * c.shape[0], wrt, create_graph=self.training)  # per-sample gradients
                c = c - self.inner_lr * grads[0]
                if self.pose_lr > 0:
                    poses = poses - self.pose_lr * grads[1]
            if not self.training:
                poses = poses.detach()
        final = (self.sdf_decoder(points, poses, c)[..., 0] - sdf).square().mean()
        self._sdf_error = final if self.training else None
        errors.append(final.detach())
        return poses, c, torch.stack(errors)

    def regularization(self) -> Tensor:
        """sdf_weight x the SDF reconstruction error after the inner steps of the last training
        forward: the geometry term of the paper's objective (field loss + geometry reconstruction),
        which trains the geometry encoding to represent the geometry; 0 drops it."""
        if self._sdf_error is None:
            return self.context0.new_zeros(())
        return self.sdf_weight * self._sdf_error

    def forward(self, points: Tensor, sdf: Tensor, params: Tensor, queries: Tensor, query_sdf: Tensor) -> Tensor:
        check_steady_inputs("enf2enf", points, sdf, queries, query_sdf)
        poses, c, _ = self.encode_geometry(points, sdf)
        if self.params is not None:
            c = c + self.params(params)[:, None]
        for block in self.blocks:
            c = block(poses, c)
        return self.field_decoder(queries, poses, F.layer_norm(c, c.shape[-1:]), query_sdf)


def check_steady_inputs(name: str, points: Tensor, sdf: Tensor, queries: Tensor, query_sdf: Tensor) -> None:
    """The steady operators' calling convention (module docstring), checked at the boundary."""
    if (
        points.ndim != 3
        or sdf.shape != points.shape[:2]
        or queries.ndim != 3
        or queries.shape[2] != points.shape[2]
        or query_sdf.shape != queries.shape[:2]
    ):
        raise InputError(
            f"{name}: expected points (B, S, d), sdf (B, S), queries (B, Q, d), query_sdf (B, Q); got "
            f"{tuple(points.shape)}, {tuple(sdf.shape)}, {tuple(queries.shape)}, {tuple(query_sdf.shape)}"
        )
