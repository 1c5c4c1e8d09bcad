"""IFactFormer as the authors built it: their parameter counts, factorized attention equal to its
dense form, coordinates in physical units, implicit iterations sharing weights; it learns."""

import math

import pytest
import torch

from surrogate.errors import InputError
from surrogate.kernels.factorized_attention import axial_apply
from surrogate.operators.factformer import FactFormer, apply_along


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# Counted from the authors' public code (huiyu-2002/IFactFormer-m, libs/model.py with
# configs/IFactFormer.yml), module by module, under our names.
PAPER_COUNTS = {
    "to_in": 4704,  # grouped 1x1 conv 3 -> 48 (96) + time conv 48 -> 96 (4608)
    "positions.0": 9312,  # Linear(96, 96) after the fixed Gaussian Fourier features
    "blocks.0.in_norm": 192,
    "blocks.0.to_v": 46080,  # 96 -> 5 x 96
    "blocks.0.to_in": 9216,
    "blocks.0.reducers.0": 37344,  # Linear 9216 + LayerNorm 192 + gated 96 -> 2x96 18624 + 96 -> 96 9312
    "blocks.0.reducers.1": 37344,
    "blocks.0.reducers.2": 37344,
    "blocks.0.kernels.0": 276480,  # q and k: 96 -> 5 heads x 96 x 3
    "blocks.0.kernels.1": 276480,
    "blocks.0.kernels.2": 276480,
    "blocks.0.to_out": 147456,  # 3 x 480 -> 96 -> 96
    "to_out": 4755,  # 96 -> 48 -> 3
}


def test_paper_preset_has_the_authors_parameter_counts_module_by_module():
    model = FactFormer()  # the defaults are the authors' configs/IFactFormer.yml
    modules = dict(model.named_modules())
    counts = {name: count(modules[name]) for name in PAPER_COUNTS}
    for name, n in counts.items():
        print(f"{name:24s} {n:>9,d}")
    print(f"{'total':24s} {count(model):>9,d}")
    assert counts == PAPER_COUNTS
    assert count(model) == sum(PAPER_COUNTS.values()) == 1_163_187
    chained = FactFormer(variant="o")  # one axis product: to_out 480 -> 96 -> 96
    assert count(dict(chained.named_modules())["blocks.0.to_out"]) == 55296 and count(chained) == 1_071_027


def kron(kernels):
    """K_1 (x) K_2 (x) ... over the flattened space, (B, H, N, N)."""
    out = kernels[0]
    for k in kernels[1:]:
        out = torch.einsum("bhij,bhkl->bhikjl", out, k).flatten(-4, -3).flatten(-2, -1)
    return out


def block_kernels(block, u, pos):
    return [kern(red(u.movedim(1 + a, 1)), pos[a]) for a, (red, kern) in enumerate(zip(block.reducers, block.kernels))]


def test_chained_attention_is_dense_attention_with_a_kronecker_kernel_and_parallel_mixes_each_axis_alone():
    torch.manual_seed(0)
    model = FactFormer(dim=24, dim_head=8, heads=2, variant="o", backend="reference").double()
    block, u = model.blocks[0], torch.randn(2, 5, 4, 3, 24, dtype=torch.float64)
    pos = model.coordinates([5, 4, 3], u)
    kernels = block_kernels(block, block.to_in(u), pos)
    v = torch.randn(2, 2, 5, 4, 3, 8, dtype=torch.float64)
    dense = (kron(kernels) @ v.flatten(2, 4)).unflatten(2, (5, 4, 3))
    torch.testing.assert_close(axial_apply(v, kernels, "reference"), dense)
    k = kernels[1]
    by_matmul = (k[:, :, None, :, :, None, None] * v[:, :, :, None]).sum(4)  # along space axis 1
    torch.testing.assert_close(apply_along(v, k, 1), by_matmul)


def test_kernels_use_physical_coordinates_so_they_agree_across_resolutions():
    """With constant pooled features, K[i, j] depends on the physical distance only: a grid of
    2n - 1 points has the n-point grid's kernel on its even points (integer indices would not)."""
    torch.manual_seed(0)
    model = FactFormer(dim=24, dim_head=8, heads=2, lengths=(2.0, 1.0)).double()
    kern = model.blocks[0].kernels[0]
    feat = torch.randn(1, 1, 24, dtype=torch.float64)
    coarse = kern(feat.expand(1, 9, 24), torch.linspace(0, 2.0, 9, dtype=torch.float64))[0, 0]
    fine = kern(feat.expand(1, 17, 24), torch.linspace(0, 2.0, 17, dtype=torch.float64))[0, 0]
    torch.testing.assert_close(fine[::2, ::2], coarse)
    for d in range(-3, 4):  # Toeplitz
        diag = torch.diagonal(coarse, d)
        torch.testing.assert_close(diag, diag[:1].expand_as(diag))


def test_iterations_share_weights_windows_and_static_fields_lift_and_bad_configs_are_refused():
    small = {"dim": 24, "dim_head": 8, "heads": 2}
    assert count(FactFormer(**small, n_layer=2)) == count(FactFormer(**small, n_layer=8))
    assert count(FactFormer(**small, depth=2)) > count(FactFormer(**small, depth=1))
    model = FactFormer(in_channels=2 * 4 + 1, out_channels=4, in_time_window=2, dim=20, dim_head=8, heads=2, lengths=(1.0, 1.0))
    assert model(torch.randn(3, 9, 6, 5), torch.zeros(3, 0)).shape == (3, 4, 6, 5)
    with pytest.raises(InputError, match="variant 'x'"):
        FactFormer(variant="x")
    with pytest.raises(InputError, match="divisible by the 5 channels per input step"):
        FactFormer(in_channels=5, out_channels=5)
    with pytest.raises(InputError, match="expected \\(B, 3, 3 space dims\\)"):
        FactFormer()(torch.randn(1, 3, 8, 8), torch.zeros(1, 0))


@pytest.mark.parametrize("variant", ["m", "o"])
def test_learns_a_streamwise_shift(variant):
    """A 3D periodic field advected one cell along x: the operator learns it (loss / 20)."""
    torch.manual_seed(0)
    model = FactFormer(1, 1, dim=32, dim_head=16, heads=2, n_layer=2, variant=variant, lengths=(2 * math.pi, 1.0, 1.0), backend="reference")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    grid = torch.linspace(0, 2 * torch.pi, 9)[:-1]

    def batch(n: int):
        a, ph = torch.randn(n, 1, 1, 1, 1), torch.rand(n, 1, 1, 1, 1) * 6.28
        x = a * torch.sin(grid.view(1, 1, 8, 1, 1) + ph) * torch.cos(grid[:4].view(1, 1, 1, 4, 1)).expand(n, 1, 8, 4, 4)
        return x, torch.roll(x, 1, dims=2)

    losses = []
    for _ in range(300 if variant == "o" else 150):  # the chained kernel product starts smaller and learns slower, as the paper finds
        x, y = batch(8)
        loss = (model(x, torch.zeros(8, 0)) - y).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    x, y = batch(16)
    with torch.no_grad():
        final = float((model(x, torch.zeros(16, 0)) - y).square().mean())
    print(variant, losses[0], final)
    assert final < losses[0] / 20
