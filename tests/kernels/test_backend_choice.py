"""backend "auto" follows the GPU measurements: on CUDA it runs a Triton kernel only where the
kernel was faster than torch.compile of its reference (benchmarks/results/gpu/kernels.json)."""

import json
from pathlib import Path

import torch

from surrogate.kernels.backend import AUTO_ON_CUDA, resolve_backend

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "gpu" / "kernels.json"
COMPARISONS = {  # op -> (the result tables' title prefix, the compiled reference's row)
    "spectral_conv": ("spectral_conv", "torch.compile(FFT reference)"),
    "graph_attention": ("graph_attention 300000", "torch.compile(scatter-softmax reference)"),
    "factorized_attention": ("factorized_attention", "torch.compile(einsum chain)"),
}


def test_auto_picks_what_was_measured_faster_than_the_compiled_reference():
    doc = json.loads(RESULTS.read_text())
    assert doc["machine"]["device"] != "cpu"
    for op, (prefix, compiled) in COMPARISONS.items():
        tables = [rows for title, rows in doc["results"].items() if title.startswith(prefix)]
        assert tables, op
        faster = [rows["ours (triton)"]["ms"] < rows[compiled]["ms"] for rows in tables]
        assert all(faster) or not any(faster), (op, faster)  # one verdict at every measured size
        assert AUTO_ON_CUDA[op] == ("triton" if faster[0] else "reference"), op


def test_auto_runs_the_reference_off_cuda():
    for op in AUTO_ON_CUDA:
        assert resolve_backend("auto", torch.zeros(1), op) == "reference"
