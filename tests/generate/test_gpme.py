import numpy as np
import pytest

from surrogate.datasets.store import GridStore
from surrogate.errors import InputError
from surrogate.generate.gpme import GPME_RANGES, GPMEDataConfig, generate_gpme
from surrogate.solvers.gpme import exact_solution


@pytest.mark.parametrize("case", ["heat", "pme"])
def test_gpme_store_holds_the_solution(tmp_path, case):
    cfg = GPMEDataConfig(case=case, n_trajectories=4, n_cells=64, n_steps=5, dt=0.1, max_substep=2e-3)
    store = GridStore(generate_gpme(cfg, tmp_path / "g.h5"))
    assert store.schema.space_shape == (64,) and store.channel_names == ("u",)
    lo, hi = GPME_RANGES[case]
    assert np.all((store.params >= lo) & (store.params <= hi))
    x = store.schema.coords["x"]
    for b in range(4):
        u = store.read(b, 4, 5)[0, 0]  # t = 0.4
        ex = exact_solution(case, x.astype(np.float64), 0.4, float(store.params[b, 0]))
        # Mean error: the porous-medium front (u ~ (t - x)^(1/m)) is singular at one cell.
        assert np.abs(u - ex).mean() < 3e-3


def test_gpme_bad_case():
    with pytest.raises(InputError, match="expected one of"):
        GPMEDataConfig(case="burgers")
