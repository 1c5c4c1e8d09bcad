"""neuraloperator's `SpectralConv` with a selectable backend, for `FNOBlocks(conv_module=...)`.

Same parameters and state dict as neuraloperator's dense layer, so checkpoints move freely
between backends. "triton" runs the truncated-DFT kernel; "reference" (and anything the
kernel does not cover: factorized or separable weights, complex data, resampling) runs
neuraloperator's own forward.
"""

from __future__ import annotations

from neuralop.layers.spectral_convolution import SpectralConv as NeuralopSpectralConv
from torch import Tensor

from surrogate.kernels.backend import resolve_backend


class SpectralConv(NeuralopSpectralConv):
    """Shapes: x (B, C_in, *space) -> (B, C_out, *space)."""

    backend: str = "auto"

    def _kernel_applies(self, output_shape: tuple[int, ...] | None) -> bool:
        plain = not (self.separable or self.complex_data or output_shape is not None or self.resolution_scaling_factor is not None)
        return plain and type(self.weight).__name__ == "DenseTensor" and self.fno_block_precision == "full"

    def forward(self, x: Tensor, output_shape: tuple[int, ...] | None = None) -> Tensor:
        if resolve_backend(self.backend, x, "spectral_conv") == "reference" or not self._kernel_applies(output_shape):
            return super().forward(x, output_shape)
        from surrogate.kernels.spectral_conv.kernel import spectral_conv_triton

        space = x.shape[2:]
        weight = self.weight.to_tensor()
        modes = [min(m, n if a < len(space) - 1 else n // 2 + 1) for a, (m, n) in enumerate(zip(weight.shape[2:], space))]
        starts = [(w - m) // 2 for w, m in zip(weight.shape[2:-1], modes[:-1])]
        index = tuple(slice(s, s + m) for s, m in zip(starts, modes[:-1])) + (slice(0, modes[-1]),)
        y = spectral_conv_triton(x, weight[(slice(None), slice(None), *index)])
        return y if self.bias is None else y + self.bias
