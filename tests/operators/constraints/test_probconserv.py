import pytest
import torch

from surrogate.errors import InputError
from surrogate.operators.constraints.probconserv import hard_projection, integral_constraint, probconserv_update


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("rank", [0, 3])
def test_constraint_holds_to_round_off(seed, rank):
    """Random predictions, covariances and constraints: G mu~ = b to round-off with sigma_G = 0."""
    gen = torch.Generator().manual_seed(seed)
    b_, n, m = 4, 50, 5
    mu = torch.randn(b_, n, generator=gen)
    var = torch.rand(b_, n, generator=gen) + 0.1
    low = torch.randn(b_, n, rank, generator=gen) if rank else None
    g = torch.randn(b_, m, n, generator=gen)
    b = torch.randn(b_, m, generator=gen)
    out = probconserv_update(mu, var, g, b, low_rank=low, full_cov=True)
    resid = (g.double() @ out.mean.double()[:, :, None])[:, :, 0] - b.double()
    assert float(resid.abs().max()) < 1e-5  # float32 output of a float64 update
    out64 = probconserv_update(mu.double(), var.double(), g.double(), b.double(), low_rank=None if low is None else low.double())
    resid64 = (g.double() @ out64.mean[:, :, None])[:, :, 0] - b.double()
    assert float(resid64.abs().max()) < 1e-12
    # The posterior covariance has G in its null space: G Sigma~ G^T = 0, and variances shrink.
    gsg = g.double() @ out.cov.double() @ g.double().transpose(1, 2)
    assert float(gsg.abs().max()) < 1e-4
    prior = var + (low.square().sum(-1) if low is not None else 0)
    assert bool((out.var <= prior + 1e-6).all())
    torch.testing.assert_close(out.var, out.cov.diagonal(dim1=1, dim2=2), rtol=1e-5, atol=1e-6)


def test_matches_dense_gaussian_conditioning():
    """The formula against conditioning a joint Gaussian by hand (sigma_G > 0)."""
    gen = torch.Generator().manual_seed(0)
    n, m, s = 6, 2, 0.3
    d = torch.rand(n, generator=gen, dtype=torch.float64) + 0.5
    low_rank = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    sigma = torch.diag(d) + low_rank @ low_rank.T
    mu = torch.randn(1, n, generator=gen, dtype=torch.float64)
    g = torch.randn(m, n, generator=gen, dtype=torch.float64)
    b = torch.randn(1, m, generator=gen, dtype=torch.float64)
    out = probconserv_update(mu, d[None], g, b, sigma_g=s, low_rank=low_rank[None], full_cov=True)
    k = sigma @ g.T @ torch.linalg.inv(g @ sigma @ g.T + s**2 * torch.eye(m, dtype=torch.float64))
    torch.testing.assert_close(out.mean[0], mu[0] - k @ (g @ mu[0] - b[0]))
    torch.testing.assert_close(out.cov[0], sigma - k @ g @ sigma)


def test_integral_constraint_per_time_slice_and_projection():
    w = torch.full((10,), 0.1, dtype=torch.float64)  # cell volumes of [0, 1]
    g = integral_constraint(w, groups=3)  # one mass constraint per time slice
    mu = torch.rand(2, 30, dtype=torch.float64)
    b = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.5, 1.0]], dtype=torch.float64)
    p = hard_projection(mu, g, b)
    torch.testing.assert_close((p.reshape(2, 3, 10) * 0.1).sum(-1), b)
    # Where the variance is zero the update leaves the prediction alone.
    var = torch.ones(2, 30, dtype=torch.float64)
    var[:, :5] = 0
    out = probconserv_update(mu, var, g, b)
    torch.testing.assert_close(out.mean[:, :5], mu[:, :5])


def test_bad_input():
    mu, var = torch.zeros(2, 4), torch.ones(2, 4)
    with pytest.raises(InputError, match="G must be"):
        probconserv_update(mu, var, torch.ones(1, 5), torch.zeros(2, 1))
    with pytest.raises(InputError, match="b must be"):
        probconserv_update(mu, var, torch.ones(1, 4), torch.zeros(2, 2))
    g = torch.tensor([[1.0, 1.0, 0.0, 0.0], [2.0, 2.0, 0.0, 0.0]])  # dependent rows
    with pytest.raises(InputError, match="singular"):
        probconserv_update(mu, var, g, torch.zeros(2, 2))
    assert probconserv_update(mu, var, g, torch.zeros(2, 2), sigma_g=0.1).mean.shape == (2, 4)


def test_wrapped_probabilistic_operators_satisfy_the_constraint():
    """Random (untrained) FNO-with-variance and deep ensemble: G u = b holds to float64 round-off."""
    from surrogate.operators.constraints.probconserv import ProbConserv
    from surrogate.operators.ensemble import DeepEnsemble
    from surrogate.operators.gaussian_fno import GaussianFNO, split_gaussian
    from surrogate.training.gaussian import fit_gaussian

    torch.manual_seed(0)
    x, p = torch.randn(3, 1, 32), torch.randn(3, 1)
    g = integral_constraint(torch.full((32,), 1 / 32, dtype=torch.float64))
    b = torch.randn(3, 1, dtype=torch.float64)
    for op in (GaussianFNO(1, 1, 1, n_modes=(8,), hidden_channels=8), DeepEnsemble(1, 1, 1, 3, (8,), 8, 2)):
        post = ProbConserv(op)(x, p, g, b)
        assert post.mean.dtype == torch.float64
        torch.testing.assert_close(post.mean.sum(-1) / 32, b, rtol=0, atol=1e-13)
    ens = DeepEnsemble(1, 1, 1, 3, (8,), 8, 2)
    means = torch.stack([split_gaussian(o)[0] for o in ens.member_outputs(x, p)])
    mean, var = split_gaussian(ens(x, p))
    torch.testing.assert_close(mean, means.mean(0))
    assert bool((var >= means.var(0, unbiased=False) - 1e-6).all())
    # NLL fitting lowers the loss on a fixed batch.
    y = torch.sin(torch.linspace(0, 6.28, 32)).expand(3, 1, 32)
    losses = fit_gaussian(GaussianFNO(1, 1, 1, n_modes=(8,), hidden_channels=8), lambda: [(x, p, y)], epochs=30, lr=1e-2)
    assert losses[-1] < losses[0] - 0.5
