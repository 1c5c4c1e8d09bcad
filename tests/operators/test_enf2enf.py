"""enf2enf: translation equivariance by construction, the meta-learned SDF fit, locality."""

import pytest
import torch

from surrogate.errors import InputError
from surrogate.operators.enf2enf import Enf2Enf, farthest_points


def ellipse_cloud(b: int, s: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points in [-1, 1]^2 and their (approximate) signed distance to an ellipse per sample."""
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(b, s, 2, generator=g) * 2 - 1
    axes = 0.2 + 0.3 * torch.rand(b, 1, 2, generator=g)
    sdf = (pts / axes).norm(dim=-1) * axes.min(-1).values - axes.min(-1).values
    return pts, sdf


def test_shifting_geometry_and_queries_together_leaves_the_fields_unchanged():
    torch.manual_seed(0)
    model = Enf2Enf(n_params=2, n_latents=12, latent_dim=32, heads=4, k_nearest=4, inner_steps=2).eval()
    pts, sdf = ellipse_cloud(2, 200)
    params = torch.randn(2, 2)
    queries = torch.rand(2, 50, 2) * 2 - 1
    qsdf = torch.rand(2, 50)
    shift = torch.tensor([[[5.3, -2.1]]])
    out = model(pts, sdf, params, queries, qsdf)
    torch.testing.assert_close(model(pts + shift, sdf, params, queries + shift, qsdf), out, rtol=1e-4, atol=1e-5)
    # Moving the queries alone does change the answer: the model is not trivially constant.
    assert (model(pts, sdf, params, queries + 0.1, qsdf) - out).abs().max() > 1e-4
    assert (model(pts, sdf, params + 1, queries, qsdf) - out).abs().max() > 1e-4
    assert (model(pts, sdf, params, queries, qsdf + 0.1) - out).abs().max() > 1e-4


def test_meta_learned_inner_steps_fit_a_new_geometry():
    """After a short meta-training on random ellipses, three inner steps on an unseen ellipse
    lower its SDF error several-fold (an untrained model barely moves)."""
    torch.manual_seed(0)
    model = Enf2Enf(n_latents=16, latent_dim=32, inner_steps=3, inner_lr=1.0).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for it in range(40):
        pts, sdf = ellipse_cloud(4, 200, seed=it)
        poses, c, _ = model.encode_geometry(pts, sdf)
        loss = (model.sdf_decoder(pts, poses, c)[..., 0] - sdf).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    pts, sdf = ellipse_cloud(4, 200, seed=999)
    errors = model.eval().encode_geometry(pts, sdf)[2]
    assert errors.shape == (4,) and errors[-1] < 0.25 * errors[0] and errors[-1] < 0.02


def test_fitted_poses_move_off_their_initialization_and_with_a_translated_geometry():
    """The inner steps move the latent poses (farthest-point samples at first), and a translated
    geometry gets the translated poses (and contexts unchanged): equivariance of the fit."""
    torch.manual_seed(0)
    model = Enf2Enf(n_latents=12, latent_dim=32, inner_steps=3, pose_lr=0.5).eval()
    pts, sdf = ellipse_cloud(2, 200)
    init = pts.gather(1, farthest_points(pts, 12)[..., None].expand(-1, -1, 2))
    poses, c, errors = model.encode_geometry(pts, sdf)
    moved = (poses - init).norm(dim=-1)
    assert float(moved.mean()) > 1e-3, float(moved.mean())
    shift = torch.tensor([[[3.7, -1.2]]])
    poses2, c2, errors2 = model.encode_geometry(pts + shift, sdf)
    torch.testing.assert_close(poses2, poses + shift, rtol=0, atol=2e-5)
    torch.testing.assert_close(c2, c, rtol=1e-4, atol=2e-5)
    torch.testing.assert_close(errors2, errors, rtol=1e-4, atol=1e-7)
    fixed = Enf2Enf(n_latents=12, latent_dim=32, inner_steps=3, pose_lr=0.0).eval()
    assert torch.equal(fixed.encode_geometry(pts, sdf)[0], init)


def test_outer_loss_trains_through_the_fitted_poses():
    torch.manual_seed(0)
    model = Enf2Enf(n_latents=8, latent_dim=32, inner_steps=2).train()
    pts, sdf = ellipse_cloud(2, 100)
    poses, _, _ = model.encode_geometry(pts, sdf)
    assert poses.requires_grad
    poses.square().sum().backward()  # the pose updates depend on the SDF decoder
    assert model.sdf_decoder.kv.weight.grad.abs().sum() > 0


def test_meta_learning_trains_the_initialization_through_the_inner_steps():
    torch.manual_seed(0)
    model = Enf2Enf(n_latents=16, latent_dim=32, inner_steps=3).train()
    pts, sdf = ellipse_cloud(2, 200)
    _, c, _ = model.encode_geometry(pts, sdf)
    c.square().sum().backward()
    assert model.context0.grad is not None and model.context0.grad.abs().sum() > 0


def test_queries_see_only_their_k_nearest_latents():
    torch.manual_seed(0)
    model = Enf2Enf(n_latents=8, latent_dim=32, k_nearest=2, inner_steps=0, n_self_blocks=0, use_query_sdf=False).eval()
    pts, _ = ellipse_cloud(1, 100)
    poses = pts[:, farthest_points(pts, 8)[0]]
    c = torch.randn(1, 8, 32)
    q = poses[:, :1] + 1e-3  # next to latent 0
    far = torch.cdist(q, poses)[0, 0].argmax()
    c2 = c.clone()
    c2[0, far] += 10.0
    dec = model.field_decoder
    torch.testing.assert_close(dec(q, poses, c), dec(q, poses, c2))
    c3 = c.clone()
    c3[0, 0] += 10.0
    assert (dec(q, poses, c) - dec(q, poses, c3)).abs().max() > 1e-3


def test_farthest_points_spread_out():
    pts = torch.rand(1, 500, 2)
    idx = farthest_points(pts, 10)[0]
    chosen = pts[0, idx]
    d = torch.cdist(chosen, chosen) + torch.eye(10) * 9
    assert len(set(idx.tolist())) == 10 and d.min() > 0.15


def test_bad_inputs_are_refused():
    with pytest.raises(InputError, match="latent_dim 30"):
        Enf2Enf(latent_dim=30, heads=4)
    model = Enf2Enf(latent_dim=32)
    with pytest.raises(InputError, match="expected points"):
        model(torch.rand(1, 10, 2), torch.rand(1, 9), torch.zeros(1, 0), torch.rand(1, 5, 2), torch.rand(1, 5))
    with pytest.raises(InputError, match="query_sdf"):
        model(torch.rand(1, 10, 2), torch.rand(1, 10), torch.zeros(1, 0), torch.rand(1, 5, 2), torch.rand(1, 4))


def test_sdf_regularization_trains_the_sdf_decoder():
    torch.manual_seed(0)
    pts, sdf = ellipse_cloud(2, 100)
    q = torch.rand(2, 20, 2)
    off = Enf2Enf(n_latents=8, latent_dim=32, inner_steps=1, sdf_weight=0.0).train()
    off(pts, sdf, torch.zeros(2, 0), q, torch.rand(2, 20))
    assert float(off.regularization()) == 0.0
    on = Enf2Enf(n_latents=8, latent_dim=32, inner_steps=1, sdf_weight=2.0).train()
    on(pts, sdf, torch.zeros(2, 0), q, torch.rand(2, 20))
    reg = on.regularization()
    poses, c, errors = on.encode_geometry(pts, sdf)
    assert float(reg) == pytest.approx(2.0 * float(errors[-1]), rel=1e-5)
    reg.backward()
    assert on.sdf_decoder.q.weight.grad.abs().sum() > 0 and on.context0.grad.abs().sum() > 0
    on.eval()(pts, sdf, torch.zeros(2, 0), q, torch.rand(2, 20))
    assert float(on.regularization()) == 0.0  # evaluation forwards leave no training term behind
