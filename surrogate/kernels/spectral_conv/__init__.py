"""FNO spectral convolution: truncated DFTs as matrix products, no full FFT (Triton), beside
the rfftn -> mode slice -> einsum -> irfftn reference."""

from surrogate.kernels.spectral_conv.module import SpectralConv
from surrogate.kernels.spectral_conv.reference import kept_frequencies, spectral_conv_reference

__all__ = ["SpectralConv", "kept_frequencies", "spectral_conv_reference"]
