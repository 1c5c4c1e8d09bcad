import os

import numpy as np
import pytest
import torch

# The one place that decides where the Triton kernels run in tests: on the GPU when CUDA is
# present (unless TRITON_INTERPRET=1 asks for the interpreter there too), else on CPU under
# Triton's interpreter, which must be on before any kernel module is imported (they are
# imported lazily, after this). tests/kernels/conftest.py takes its DEVICE from here.
KERNEL_DEVICE = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
if KERNEL_DEVICE == "cpu":
    os.environ["TRITON_INTERPRET"] = "1"

from surrogate.datasets.store import GridSchema, GridStoreWriter  # noqa: E402  (after the interpreter switch above)

torch.set_num_threads(2)


def write_random_store(path, n=6, t=7, space=(8, 6), vector=True, mask=True, seed=0):
    """A store of random float32 data with every kind of entry; returns the arrays written."""
    rng = np.random.default_rng(seed)
    coords = {"x": np.linspace(0, 1, space[0]), "y": np.linspace(0, 2, space[1])}
    schema = GridSchema(
        dataset_name="random",
        time=np.arange(t) * 0.5,
        coords=coords,
        scalar_fields=("p",),
        vector_fields=("velocity",) if vector else (),
        param_names=("re", "angle"),
        param_offset=(100.0, 0.0),
        param_scale=(50.0, 2.0),
        boundary={"x": "periodic", "y": "wall"},
        has_mask=mask,
    )
    data = {"p": rng.standard_normal((n, t, *space)).astype(np.float32)}
    if vector:
        data["velocity"] = rng.standard_normal((n, t, *space, 2)).astype(np.float32)
    params = rng.uniform(50, 150, (n, 2))
    m = (rng.uniform(size=(n, *space)) > 0.2).astype(np.float32)
    with GridStoreWriter(path, schema, n) as w:
        w.write(0, {k: v[:3] for k, v in data.items()}, params[:3], m[:3] if mask else None)
        w.write(3, {k: v[3:] for k, v in data.items()}, params[3:], m[3:] if mask else None)
        w.set_splits(train=[0, 2, 3, 5], valid=[1], test=[4])
    return data, params, m


@pytest.fixture
def random_store(tmp_path):
    path = tmp_path / "random.h5"
    data, params, mask = write_random_store(path)
    return path, data, params, mask
