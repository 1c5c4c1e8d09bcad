"""Hard conservation of domain integrals: cell volumes from store coordinates, and a surrogate
whose steps keep the integral of the conserved channels exactly while the others evolve."""

import numpy as np
import pytest
import torch

from surrogate.errors import InputError
from surrogate.operators.constraints.conserved_integrals import cell_volumes, cell_widths, conserve_integrals, volume_grid
from surrogate.operators.factformer import FactFormer
from surrogate.operators.normalizer import Normalizer
from surrogate.operators.surrogate import Surrogate
from surrogate.solvers.channel import ChannelGrid


def test_cell_widths_tile_the_domain():
    x = np.arange(8) * 0.25
    assert np.allclose(cell_widths(x, periodic=True), 0.25)
    y = ChannelGrid(8, 16, 8).centres().numpy()  # tanh-stretched centres, walls at 0 and 2
    w = cell_widths(y, periodic=False)
    assert (w > 0).all() and abs(w.sum() - 2.0) < 0.01  # mirrored end cells: 0.4% beyond the walls
    h = np.diff(ChannelGrid(8, 16, 8).faces().numpy())
    assert np.abs(w[1:-1] / h[1:-1] - 1).max() < 0.05  # near the true heights inside (3.5% at worst on this coarse grid)
    vol = volume_grid(cell_volumes({"x": x, "y": y}, {"x": "periodic", "y": "wall"}))
    assert vol.shape == (8, 16) and abs(float(vol.sum()) / (2.0 * w.sum()) - 1) < 1e-6


def test_surrogate_steps_keep_the_conserved_integral_exactly():
    torch.manual_seed(0)
    y = ChannelGrid(8, 16, 8).centres().numpy()
    vol = volume_grid(cell_volumes({"x": np.arange(8.0), "y": y, "z": np.arange(8.0)}, {"x": "periodic", "y": "wall", "z": "periodic"}))
    norm = Normalizer(torch.tensor([10.0, 0.0]), torch.tensor([5.0, 0.5]), 3, torch.zeros(0), torch.ones(0))
    model = Surrogate(FactFormer(2, 2, dim=16, dim_head=8, heads=2, n_layer=2), norm, 1, conserve=[0], volumes=vol).eval()
    x = 10 + 3 * torch.randn(3, 2, 8, 16, 8)
    integral = lambda f, c: (f[:, c].double() * vol.double()).sum((1, 2, 3))  # noqa: E731
    q0, other0 = integral(x, 0), integral(x, 1)
    with torch.no_grad():
        for _ in range(20):
            x = model(x[:, None], torch.zeros(3, 0))
    assert torch.allclose(integral(x, 0), q0, rtol=1e-5)  # float32 round-off over 20 steps
    assert (integral(x, 1) - other0).abs().max() > 1.0  # the free channel's integral does move
    mask = torch.ones(3, 1, 8, 16, 8)
    mask[:, :, :2] = 0
    d = conserve_integrals(torch.randn(3, 2, 8, 16, 8), vol, [0, 1], mask)
    assert ((d * mask * vol).sum((2, 3, 4)).abs() < 1e-4).all()


def test_conserving_an_untrained_channel_is_refused(random_store):
    from surrogate.datasets.store import GridStore
    from surrogate.tasks.grid import data_schema

    store = GridStore(random_store[0])
    with pytest.raises(InputError, match=r"data.conserve: \['pressure'\] are not among the trained channels"):
        data_schema(store, list(store.channel_names), 1, ["pressure"])
    schema = data_schema(store, ["p", "velocity_x"], 1, ["velocity_x"])
    assert schema["conserve"] == ["velocity_x"] and len(schema["cell_volumes"]) == 2
