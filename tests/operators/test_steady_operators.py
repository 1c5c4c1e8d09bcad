"""The steady operators (enf2enf, steady_graph, gino): registry, calling convention, k-NN graph."""

import inspect
from dataclasses import fields

import pytest
import torch

from surrogate.errors import InputError
from surrogate.operators.registry import OPERATORS, STEADY_OPERATORS, build_operator
from surrogate.operators.steady_graph import knn_edges

SMALL = {
    "enf2enf": {"n_latents": 8, "latent_dim": 32},
    "steady_graph": {"width": 16, "depth": 2},
    "gino": {"latent_shape": [8, 8], "modes": [4, 4], "hidden": 8, "n_layers": 1, "radius": 0.3},
}


def inputs(b: int = 2, s: int = 60, q: int = 40, p: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(b, s, 2, generator=g),
        torch.rand(b, s, generator=g),
        torch.randn(b, p, generator=g),
        torch.rand(b, q, 2, generator=g),
        torch.rand(b, q, generator=g),
    )


@pytest.mark.parametrize("name", STEADY_OPERATORS)
def test_registry_builds_every_steady_entry_and_config_matches_constructor(name):
    cfg_cls, cls = OPERATORS[name]
    assert [f.name for f in fields(cfg_cls)] == list(inspect.signature(cls.__init__).parameters)[1:]
    torch.manual_seed(0)
    model = build_operator(name, {**SMALL[name], "n_params": 2, "out_channels": 3})
    x = inputs()
    out = model(*x)
    assert out.shape == (2, 40, 3) and torch.isfinite(out).all()
    # The global parameters reach the output.
    assert (model(*x[:2], x[2] + 1.0, *x[3:]) - out).abs().max() > 1e-5
    with pytest.raises(InputError, match="query_sdf"):
        model(*x[:4], x[4][:, :-1])


@pytest.mark.parametrize("backbone", ["meshgraphnet", "graph_transformer"])
def test_graph_baseline_is_translation_invariant_and_keeps_samples_apart(backbone):
    torch.manual_seed(0)
    model = build_operator("steady_graph", {"backbone": backbone, "width": 16, "depth": 2, "n_params": 2}).eval()
    pts, sdf, params, q, qsdf = inputs()
    out = model(pts, sdf, params, q, qsdf)
    shift = torch.tensor([3.0, -1.5])
    torch.testing.assert_close(model(pts + shift, sdf, params, q + shift, qsdf), out, rtol=1e-4, atol=1e-4)
    q2, qsdf2 = q.clone(), qsdf.clone()
    q2[1], qsdf2[1] = torch.rand(40, 2), torch.rand(40)
    torch.testing.assert_close(model(pts, sdf, params, q2, qsdf2)[0], out[0])  # sample 1 cannot reach sample 0


def test_knn_edges_match_brute_force():
    x = torch.rand(300, 2)
    e = knn_edges(x, 5, chunk=64)
    d = torch.cdist(x, x) + torch.eye(300) * 9
    nearest = d.topk(5, largest=False).indices
    want = {(i, int(j)) for i in range(300) for j in nearest[i]}
    want |= {(j, i) for i, j in want}
    assert set(map(tuple, e.t().tolist())) == want


def test_gino_refuses_bad_boxes():
    with pytest.raises(InputError, match="x_hi > x_lo"):
        build_operator("gino", {"box": [1.0, 0.0, 0.0, 1.0]})
