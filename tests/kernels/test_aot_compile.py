"""Every Triton kernel configuration the models launch compiles for real GPUs (sm_80, sm_90)
with its shared memory inside the target's limit: a kernel change that breaks a GPU build
fails here, on a machine without a GPU."""

import pytest
from rich.console import Console
from rich.table import Table

from benchmarks.aot_kernels import compile_all, record_model_launches
from surrogate.kernels.aot import KERNELS, SHARED_LIMIT, Launch
from tests.kernels.conftest import DEVICE

pytestmark = pytest.mark.skipif(DEVICE == "cuda", reason="on a GPU host the kernel tests compile for the device itself")


def test_every_launched_configuration_compiles_for_sm80_and_sm90():
    per_case = record_model_launches()
    assert all(per_case.values()), {name: len(found) for name, found in per_case.items()}
    launches = sorted(set().union(*per_case.values()), key=Launch.describe)
    assert {x.kernel for x in launches} == set(KERNELS)  # every kernel of the project is launched by some model
    dtypes = {v.split("/")[0] for x in launches for _, kind, v in x.args if kind == "tensor"}
    assert {"float32", "bfloat16"} <= dtypes
    results = compile_all(launches)
    assert len(results) == 2 * len(launches) and {r["capability"] for r in results} == {80, 90}
    table = Table("kernel [constexprs; dtypes]", "target", "shared B", "registers", "spill B")
    for r in results:
        table.add_row(r["launch"], f"sm_{r['capability']}", str(r["shared_bytes"]), str(r["registers"]), str(r["spill_bytes"]))
    Console(width=200).print(table)
    too_big = [r for r in results if r["shared_bytes"] > SHARED_LIMIT[r["capability"]]]
    assert not too_big, too_big
    assert all(0 < r["registers"] <= 255 for r in results)


def test_a_configuration_beyond_the_shared_memory_limit_is_caught():
    """The check can fail: a real GEMM with 64 x 64 tiles and K blocks of 256 stages 256 KiB per
    block, beyond both targets' limits."""
    (found,) = record_model_launches({"fno": _small_fno}).values()
    gemm = sorted(found, key=Launch.describe)[0]
    big = {"BM": 64, "BN": 64, "BK": 256, "A_COMPLEX": False, "B_COMPLEX": False, "C_COMPLEX": False}
    huge = Launch(gemm.kernel, tuple((n, k, big.get(n, v)) for n, k, v in gemm.args))
    (r80, r90) = compile_all([huge])
    assert r80["shared_bytes"] > SHARED_LIMIT[80] and r90["shared_bytes"] > SHARED_LIMIT[90]
    assert not r80["fits"] and not r90["fits"]


def _small_fno():
    import torch

    from surrogate.operators.fno import FNO

    model = FNO(1, 1, 0, (4, 4), 8, 1, spectral_backend="triton")
    x = torch.randn(2, 1, 16, 16)
    return lambda: model(x, torch.zeros(2, 0))
