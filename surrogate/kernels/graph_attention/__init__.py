"""Multi-head attention restricted to a graph's edges: Triton kernels beside the scatter-softmax reference."""

from surrogate.kernels.graph_attention.attention import graph_attention, merge_attention
from surrogate.kernels.graph_attention.ell import EllGraph
from surrogate.kernels.graph_attention.reference import graph_attention_reference

__all__ = ["EllGraph", "graph_attention", "graph_attention_reference", "merge_attention"]
