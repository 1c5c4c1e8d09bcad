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


@pytest.mark.parametrize("case", ["pme", "stefan"])
def test_conservation_rhs_comes_from_the_boundary_fluxes_not_the_target(tmp_path, case):
    """b(t) = initial mass + recorded boundary inflow: it matches the mass of the true solution at
    every step, and corrupting the stored solution after t0 leaves it unchanged."""
    import h5py
    import torch

    from surrogate.operators.constraints.conserved_integrals import cell_widths
    from surrogate.operators.constraints.probconserv import conservation_rhs

    cfg = GPMEDataConfig(case=case, n_trajectories=4, n_cells=32, n_steps=6, dt=0.05, max_substep=5e-3)
    path = generate_gpme(cfg, tmp_path / "g.h5")

    def rhs_and_truth(store):
        w = torch.from_numpy(cell_widths(store.schema.coords["x"], False))
        u = torch.from_numpy(np.stack([store.read(b, 0, store.n_steps)[:, 0] for b in range(4)])).double()  # (B, T, N)
        b = conservation_rhs(u[:, 0], w, torch.from_numpy(store.boundary_inflow["u"]))
        return b, (u * w).sum(-1)

    store = GridStore(path)
    assert store.schema.param_names == ("degree" if case == "pme" else "u_star",)  # the inflow is no model parameter
    b, mass = rhs_and_truth(store)
    assert float(b[:, -1].sub(b[:, 0]).abs().min()) > 1e-3  # mass does enter through the boundary
    torch.testing.assert_close(b, mass, rtol=0, atol=2e-6)  # float32 fields, float64 fluxes
    store.close()
    with h5py.File(path, "r+") as f:
        f["t0_fields/u"][:, 1:] = np.random.default_rng(0).uniform(0, 1, f["t0_fields/u"][:, 1:].shape)
    b_corrupt, mass_corrupt = rhs_and_truth(GridStore(path))
    assert torch.equal(b_corrupt, b)
    assert float((mass_corrupt - b)[:, 1:].abs().min()) > 1e-3
