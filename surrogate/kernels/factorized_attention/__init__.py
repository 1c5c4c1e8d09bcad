"""FactFormer's per-axis kernel application (Li et al. 2023): Triton passes beside the einsum chain."""

from surrogate.kernels.factorized_attention.apply import axial_apply
from surrogate.kernels.factorized_attention.reference import axial_apply_reference

__all__ = ["axial_apply", "axial_apply_reference"]
