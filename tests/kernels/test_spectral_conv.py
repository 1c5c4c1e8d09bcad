import pytest
import torch

from surrogate.errors import InputError
from surrogate.kernels.spectral_conv import SpectralConv, spectral_conv_reference
from surrogate.operators.fno import FNO
from tests.kernels.conftest import DEVICE, TOLERANCE, assert_close

CASES = [((2, 3, 10, 9), (4, 3)), ((1, 2, 7), (3,)), ((2, 2, 6, 5, 8), (3, 4, 3)), ((3, 5, 11, 12), (5, 7))]


@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("shape,modes", CASES)
def test_forward_and_gradients_match_the_fft_reference(shape, modes, dtype):
    from surrogate.kernels.spectral_conv.kernel import spectral_conv_triton

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen).to(DEVICE)
    w = (torch.randn(shape[1], 4, *modes, dtype=torch.complex64, generator=gen) / shape[1]).to(DEVICE)
    xr, wr = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    xk, wk = x.to(dtype).requires_grad_(True), w.clone().requires_grad_(True)
    ref = spectral_conv_reference(xr, wr)
    out = spectral_conv_triton(xk, wk)
    assert out.dtype == dtype
    assert_close(out, ref, dtype)
    g = torch.randn(ref.shape, generator=gen).to(DEVICE)
    gx_ref, gw_ref = torch.autograd.grad(ref, (xr, wr), g)
    gx, gw = torch.autograd.grad(out, (xk, wk), g.to(dtype))
    assert_close(gx, gx_ref, dtype)
    assert_close(torch.view_as_real(gw), torch.view_as_real(gw_ref), dtype)


def test_reference_is_neuraloperators_layer():
    layer = SpectralConv(3, 4, (8, 6))
    layer.backend = "reference"
    x = torch.randn(2, 3, 16, 12)
    expected = spectral_conv_reference(x, layer.weight.to_tensor()) + layer.bias
    torch.testing.assert_close(layer(x), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("padding", [(), (0.25, 0.0)])
def test_fno_selects_the_kernel_and_agrees_with_the_reference(padding):
    """Also on the padded shapes of domain padding (12 x 10 -> 18 x 10)."""
    torch.manual_seed(0)
    ref = FNO(2, 1, 1, (6, 6), 8, 2, spectral_backend="reference", domain_padding=padding).to(DEVICE)
    ker = FNO(2, 1, 1, (6, 6), 8, 2, spectral_backend="triton", domain_padding=padding).to(DEVICE)
    ker.load_state_dict(ref.state_dict())  # same parameters under either backend
    assert all(conv.backend == "triton" for conv in ker.fno_blocks.convs)
    x, p = torch.randn(2, 2, 12, 10, device=DEVICE), torch.randn(2, 1, device=DEVICE)
    y_ref, y_ker = ref(x, p), ker(x, p)
    assert_close(y_ker, y_ref, torch.float32)
    y_ref.square().sum().backward()
    y_ker.square().sum().backward()
    for a, b in zip(ref.parameters(), ker.parameters()):
        assert_close(b.grad, a.grad, torch.float32)


def test_bad_backend_and_shapes(monkeypatch):
    with pytest.raises(InputError, match="spectral_backend 'cuda'"):
        FNO(1, 1, 0, (4, 4), 8, 1, spectral_backend="cuda")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # unset on a CUDA host already
    layer = SpectralConv(2, 2, (4, 4))
    layer.backend = "triton"
    with pytest.raises(InputError, match="TRITON_INTERPRET=1"):
        layer(torch.randn(1, 2, 8, 8))
    with pytest.raises(InputError, match="does not match weight"):
        spectral_conv_reference(torch.randn(1, 3, 8, 8), torch.zeros(2, 2, 4, 3, dtype=torch.complex64))
    with pytest.raises(InputError, match="at most 5"):
        spectral_conv_reference(torch.randn(1, 2, 8, 8), torch.zeros(2, 2, 4, 6, dtype=torch.complex64))
