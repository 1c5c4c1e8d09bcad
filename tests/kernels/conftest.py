import pytest
import torch

pytest.importorskip("triton", reason="the kernels need triton (installed by `make test` from the test extras)")

from tests.conftest import KERNEL_DEVICE as DEVICE  # noqa: E402  (after the importorskip above)

# dtype -> (atol relative to the reference's largest entry, rtol) against the fp32 reference.
# bf16 inputs (fp32 accumulation) run under the interpreter as well as on a GPU.
TOLERANCE = {torch.float32: (2e-5, 1e-4), torch.bfloat16: (5e-2, 5e-2)}
if DEVICE == "cuda":
    TOLERANCE[torch.float32] = (5e-3, 5e-3)  # TF32 matmuls


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    atol, rtol = TOLERANCE[dtype]
    scale = float(expected.abs().max())
    torch.testing.assert_close(actual.float(), expected.float(), atol=atol * max(1.0, scale), rtol=rtol)
