from dataclasses import fields

import pytest
import torch
from neuralop.models import FNO as NeuralopFNO

from surrogate.errors import InputError
from surrogate.operators.fno import FNO, FNOConfig
from surrogate.operators.normalizer import Normalizer
from surrogate.operators.persistence import Persistence
from surrogate.operators.registry import MESH_OPERATORS, OPERATORS, STEADY_OPERATORS, build_operator
from surrogate.operators.surrogate import Surrogate


@pytest.mark.parametrize("name", sorted(set(OPERATORS) - set(MESH_OPERATORS) - set(STEADY_OPERATORS)))
def test_registry_builds_every_entry_and_config_matches_constructor(name):
    cfg_cls, cls = OPERATORS[name]
    cfg = {"in_channels": 3, "out_channels": 2, "n_params": 1}
    if "n_modes" in {f.name for f in fields(cfg_cls)}:
        cfg["n_modes"] = [8, 8]
    if "n_dims" in {f.name for f in fields(cfg_cls)}:
        cfg["n_dims"] = 2
    if "lengths" in {f.name for f in fields(cfg_cls)}:
        cfg["lengths"] = [1.0, 1.0]
    model = build_operator(name, cfg)
    assert isinstance(model, cls)
    import inspect

    assert [f.name for f in fields(cfg_cls)] == list(inspect.signature(cls.__init__).parameters)[1:]
    out = model(torch.randn(2, 3, 16, 16), torch.randn(2, 1))
    assert out.shape == (2, 4 if getattr(cls, "probabilistic", False) else 2, 16, 16)


def test_registry_rejects_unknown_names_and_keys():
    with pytest.raises(InputError, match="model name 'unet'"):
        build_operator("unet", {})
    with pytest.raises(InputError, match="unknown key\\(s\\) \\['widht'\\]"):
        build_operator("fno", {"widht": 3})
    with pytest.raises(InputError, match="n_layers: expected an integer"):
        build_operator("fno", {"n_layers": "four"})


def test_fno_mask_zeroes_solid_output_and_params_matter():
    torch.manual_seed(0)
    model = FNO(in_channels=2, out_channels=2, n_params=2, n_modes=(6, 6), hidden_channels=8)
    x = torch.randn(2, 2, 12, 10)
    mask = torch.ones(2, 1, 12, 10)
    mask[:, :, 3:6, 4:7] = 0
    out = model(x, torch.zeros(2, 2), mask)
    assert torch.all(out[:, :, 3:6, 4:7] == 0) and out.abs().sum() > 0
    out2 = model(x, torch.ones(2, 2), mask)
    assert (out2 - out).abs().max() > 1e-4


def test_fno_is_dimension_generic():
    for space, modes in [((32,), (8,)), ((8, 8, 8), (4, 4, 4))]:
        m = FNO(in_channels=1, out_channels=1, n_params=0, n_modes=modes, hidden_channels=4, n_layers=2)
        assert m(torch.randn(1, 1, *space), torch.zeros(1, 0)).shape == (1, 1, *space)


def test_fno_spectral_layers_are_neuraloperators():
    """Same layer stack as neuraloperator's FNO: identical parameter count for the same inputs."""
    ours = FNO(in_channels=2, out_channels=1, n_params=0, n_modes=(8, 8), hidden_channels=16, use_mask=False)
    ref = NeuralopFNO(n_modes=(8, 8), in_channels=2, out_channels=1, hidden_channels=16)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


def test_fno_bad_shapes():
    m = FNO(in_channels=2, n_params=1, n_modes=(4, 4), hidden_channels=4)
    with pytest.raises(InputError, match="expected \\(B, 2"):
        m(torch.randn(1, 3, 8, 8), torch.zeros(1, 1))
    with pytest.raises(InputError, match="params"):
        m(torch.randn(1, 2, 8, 8), torch.zeros(1, 2))


def test_surrogate_of_persistence_is_identity_and_normalizer_round_trips():
    norm = Normalizer(torch.tensor([1.0, -2.0]), torch.tensor([2.0, 0.5]), 2, torch.zeros(0), torch.ones(0))
    x = torch.randn(3, 2, 5, 5)
    torch.testing.assert_close(norm.decode(norm.encode(x)), x)
    assert abs(float(norm.encode(x)[:, 0].mean() * 2 + 1 - x[:, 0].mean())) < 1e-5
    model = Surrogate(Persistence(2, 2, 0), norm, n_input=1)
    torch.testing.assert_close(model(x[:, None], torch.zeros(3, 0)), x)
    assert FNOConfig().n_modes == (16, 16)
