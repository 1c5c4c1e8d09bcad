import pytest
import torch

from surrogate.errors import InputError
from surrogate.kernels.graph_attention import EllGraph, graph_attention, graph_attention_reference
from tests.kernels.conftest import DEVICE, TOLERANCE, assert_close


def random_graph(n, e, seed):
    gen = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=gen)
    return ei[:, ei[1] != 5]  # node 5 receives no edge: its output must be 0


@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("n,h,d,e", [(37, 3, 12, 150), (50, 2, 7, 400), (9, 1, 16, 30)])
@pytest.mark.parametrize("atomics", [False, True])
@pytest.mark.parametrize("n_global", [0, 2])
def test_forward_and_gradients_match_scatter_softmax(n, h, d, e, atomics, n_global, dtype):
    ei = random_graph(n, e, seed=n)
    graph = EllGraph.from_edge_index(ei, n).to(DEVICE)
    gen = torch.Generator().manual_seed(3)
    tensors = [torch.randn(n, h, d, generator=gen) for _ in range(3)]
    tensors += [torch.randn(n_global, h, d, generator=gen) for _ in range(2 * (n_global > 0))]
    ref_in = [t.to(DEVICE).requires_grad_(True) for t in tensors]
    ker_in = [t.to(DEVICE, dtype).requires_grad_(True) for t in tensors]

    def call(inputs, **kw):
        q, k, v, *glob = inputs
        return graph_attention(q, k, v, graph, global_k=glob[0] if glob else None, global_v=glob[1] if glob else None, **kw)

    ref = call(ref_in, edge_index=ei.to(DEVICE), backend="reference")
    out = call(ker_in, backend="triton", atomics=atomics)
    assert_close(out, ref, dtype)
    if n_global == 0:
        assert float(out[5].abs().max()) == 0.0
    g = torch.randn(ref.shape, generator=gen).to(DEVICE)
    for a, b in zip(torch.autograd.grad(out, ker_in, g.to(dtype)), torch.autograd.grad(ref, ref_in, g)):
        assert_close(a, b, dtype)


def test_reference_is_dense_masked_softmax():
    n, h, d = 6, 2, 4
    ei = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 2], [1, 1, 1, 2, 0, 0, 3, 3]])
    gen = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(n, h, d, generator=gen, dtype=torch.float64) for _ in range(3))
    out, lse = graph_attention_reference(q, k, v, ei, 0.5)
    adj = torch.zeros(n, n, dtype=torch.bool)
    adj[ei[1], ei[0]] = True
    s = torch.einsum("ihd,jhd->hij", q, k) * 0.5
    s = s.masked_fill(~adj, float("-inf"))
    p = torch.nan_to_num(torch.softmax(s, -1))
    dense = torch.einsum("hij,jhd->ihd", p, v)
    torch.testing.assert_close(out, dense)
    assert torch.isfinite(lse[:4]).all() and torch.isinf(lse[4:]).all()  # nodes 4, 5 receive no edge


def test_ell_lists_every_edge_once():
    ei = random_graph(20, 80, seed=1)
    graph = EllGraph.from_edge_index(ei, 20)
    pairs = sorted((int(j), i) for i, row in enumerate(graph.neighbors) for j in row if j >= 0)
    assert pairs == sorted(zip(ei[0].tolist(), ei[1].tolist()))
    rev = sorted((j, int(i)) for j, row in enumerate(graph.reverse) for i in row if i >= 0)
    assert rev == pairs


def test_bad_inputs():
    with pytest.raises(InputError, match=r"node ids must lie in \[0, 4\)"):
        EllGraph.from_edge_index(torch.tensor([[0, 7], [1, 2]]), 4)
    graph = EllGraph.from_edge_index(torch.tensor([[0, 1], [1, 2]]), 3)
    q = torch.randn(4, 1, 8)
    with pytest.raises(InputError, match="the graph has 3 nodes, q has 4"):
        graph_attention(q, q, q, graph)
    with pytest.raises(InputError, match="needs edge_index"):
        graph_attention(q[:3], q[:3], q[:3], graph, backend="reference")
