"""IFactFormer: factorized attention equals its dense form; the implicit block shares weights; it learns."""

import pytest
import torch

from surrogate.errors import InputError
from surrogate.operators.factformer import FactFormer, FactorizedAttention, apply_along


def kron(kernels):
    """K_1 (x) K_2 (x) ... over the flattened space, (B, H, N, N)."""
    out = kernels[0]
    for k in kernels[1:]:
        out = torch.einsum("bhij,bhkl->bhikjl", out, k).flatten(-4, -3).flatten(-2, -1)
    return out


def test_chained_factorized_attention_is_dense_attention_with_a_kronecker_kernel():
    torch.manual_seed(0)
    attn = FactorizedAttention(3, 16, 2, "o", "reference").double()
    h = torch.randn(2, 5, 4, 3, 16, dtype=torch.float64)
    kernels = [attn.kernel(h, a) for a in range(3)]
    v = attn.v(h).unflatten(-1, (2, -1)).movedim(-2, 1)  # (B, H, 5, 4, 3, Dh)
    dense = kron(kernels) @ v.flatten(2, 4)  # (B, H, N, Dh)
    expected = attn.out(dense.unflatten(2, (5, 4, 3)).movedim(1, -2).flatten(-2))
    torch.testing.assert_close(attn(h), expected)


def test_parallel_variant_mixes_each_axis_on_its_own():
    torch.manual_seed(0)
    v = torch.randn(2, 3, 5, 4, 6, 7)
    k = torch.randn(2, 3, 4, 4)
    by_matmul = (k[:, :, None, :, :, None, None] * v[:, :, :, None]).sum(4)  # along space axis 1 (size 4)
    torch.testing.assert_close(apply_along(v, k, 1), by_matmul, rtol=1e-5, atol=1e-5)
    attn = FactorizedAttention(3, 8, 2, "m", "reference")
    assert attn.out.in_features == 24  # the three axis results are concatenated


def test_rotary_kernels_depend_on_relative_axis_positions():
    """With constant pooled features, K_a[i, j] depends on i - j only (a Toeplitz kernel)."""
    torch.manual_seed(0)
    attn = FactorizedAttention(2, 16, 2, "m", "reference")
    h = torch.randn(1, 1, 1, 16).expand(1, 8, 6, 16)
    k = attn.kernel(h, 0)[0, 0]  # (8, 8)
    for d in range(-3, 4):
        diag = torch.diagonal(k, d)
        torch.testing.assert_close(diag, diag[:1].expand_as(diag), rtol=1e-4, atol=1e-6)


def test_implicit_depth_costs_no_parameters_and_bad_configs_are_refused():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(FactFormer(depth=2)) == count(FactFormer(depth=8))
    with pytest.raises(InputError, match="variant 'x'"):
        FactFormer(variant="x")
    with pytest.raises(InputError, match="even head size"):
        FactFormer(dim=12, heads=4)
    with pytest.raises(InputError, match="expected \\(B, 4, 3 space dims\\)"):
        FactFormer()(torch.randn(1, 4, 8, 8), torch.zeros(1, 0))


@pytest.mark.parametrize("variant", ["m", "o"])
def test_learns_a_streamwise_shift(variant):
    """A 3D periodic field advected one cell along x: the operator learns it (loss / 20)."""
    torch.manual_seed(0)
    model = FactFormer(in_channels=1, out_channels=1, dim=32, heads=4, depth=2, variant=variant, backend="reference")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    grid = torch.linspace(0, 2 * torch.pi, 9)[:-1]

    def batch(n: int):
        a, ph = torch.randn(n, 1, 1, 1, 1), torch.rand(n, 1, 1, 1, 1) * 6.28
        x = a * torch.sin(grid.view(1, 1, 8, 1, 1) + ph) * torch.cos(grid[:4].view(1, 1, 1, 4, 1)).expand(n, 1, 8, 4, 4)
        return x, torch.roll(x, 1, dims=2)

    losses = []
    for _ in range(150):
        x, y = batch(8)
        loss = (model(x, torch.zeros(8, 0)) - y).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    x, y = batch(16)
    with torch.no_grad():
        final = float((model(x, torch.zeros(16, 0)) - y).square().mean())
    assert final < losses[0] / 20
