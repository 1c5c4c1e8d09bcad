import pytest
import torch

from surrogate.errors import InputError
from surrogate.kernels.factorized_attention import axial_apply, axial_apply_reference
from tests.kernels.conftest import DEVICE, TOLERANCE, assert_close


@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("space", [(5, 6, 7), (9, 4), (11,), (3, 17, 5)])
def test_forward_and_gradients_match_the_einsum_chain(space, dtype):
    gen = torch.Generator().manual_seed(1)
    v = torch.randn(2, 3, *space, 5, generator=gen).to(DEVICE)
    ks = [(torch.randn(2, 3, n, n, generator=gen) / n).to(DEVICE) for n in space]
    vr, kr = v.clone().requires_grad_(True), [k.clone().requires_grad_(True) for k in ks]
    vk, kk = v.to(dtype).requires_grad_(True), [k.to(dtype).requires_grad_(True) for k in ks]
    ref = axial_apply_reference(vr, kr)
    out = axial_apply(vk, kk, backend="triton")
    assert_close(out, ref, dtype)
    g = torch.randn(ref.shape, generator=gen).to(DEVICE)
    for a, b in zip(torch.autograd.grad(out, [vk, *kk], g.to(dtype)), torch.autograd.grad(ref, [vr, *kr], g)):
        assert_close(a, b, dtype)


def test_reference_is_the_dense_operator():
    """The chain equals the Kronecker-product kernel applied to the flattened field."""
    gen = torch.Generator().manual_seed(2)
    v = torch.randn(1, 1, 3, 4, 2, generator=gen, dtype=torch.float64)
    k1, k2 = torch.randn(1, 1, 3, 3, generator=gen, dtype=torch.float64), torch.randn(1, 1, 4, 4, generator=gen, dtype=torch.float64)
    dense = torch.kron(k1[0, 0], k2[0, 0]) @ v[0, 0].reshape(12, 2)
    torch.testing.assert_close(axial_apply_reference(v, [k1, k2])[0, 0].reshape(12, 2), dense)


def test_bad_kernels_are_named():
    v = torch.randn(1, 2, 4, 5, 3)
    with pytest.raises(InputError, match="1 given for a field of 2 space axes"):
        axial_apply(v, [torch.randn(1, 2, 4, 4)])
    with pytest.raises(InputError, match=r"axial kernel 1: expected \(1, 2, 5, 5\)"):
        axial_apply(v, [torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 4)])
