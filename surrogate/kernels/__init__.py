"""Triton kernels for the operators' hottest paths, each beside its plain PyTorch reference.

Each subpackage holds `reference.py` (the PyTorch path the kernel must match), `kernel.py`
(Triton; imported only when that backend is chosen, so the package works without a GPU) and
the module the models use. `backend="auto"` picks Triton on CUDA and the reference
elsewhere; tests run the kernels on CPU under `TRITON_INTERPRET=1`.
"""

from surrogate.kernels.backend import resolve_backend

__all__ = ["resolve_backend"]
