"""Mesh operators: the attention pattern, sparse attention = dense masked attention, invariances."""

import inspect
from dataclasses import fields

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import subgraph

from surrogate.errors import InputError
from surrogate.kernels.graph_attention import EllGraph
from surrogate.operators.attention_graph import attention_edges, khop_edges, morton_order
from surrogate.operators.graph_transformer import GraphTransformer, TransformerBlock, rope_angles, rotary
from surrogate.operators.meshgraphnet import MeshGraphNet
from surrogate.operators.registry import MESH_OPERATORS, OPERATORS, build_operator


def grid_mesh(nx: int, ny: int, channels: int = 6, seed: int = 0) -> Data:
    """A triangulated nx x ny grid of nodes as a graph with random inputs."""
    idx = torch.arange(nx * ny).view(ny, nx)
    a, b, c, d = idx[:-1, :-1].flatten(), idx[:-1, 1:].flatten(), idx[1:, 1:].flatten(), idx[1:, :-1].flatten()
    und = torch.cat([torch.stack([a, b]), torch.stack([b, c]), torch.stack([a, c]), torch.stack([a, d]), torch.stack([d, c])], 1)
    und = torch.unique(torch.sort(und, 0).values, dim=1)
    ei = torch.cat([und, und.flip(0)], 1)
    ys, xs = torch.meshgrid(torch.arange(ny, dtype=torch.float32), torch.arange(nx, dtype=torch.float32), indexing="ij")
    pos = torch.stack([xs.flatten(), ys.flatten()], 1) * 0.1
    rel = pos[ei[1]] - pos[ei[0]]
    g = torch.Generator().manual_seed(seed)
    return Data(
        x=torch.randn(nx * ny, channels, generator=g),
        pos=pos,
        edge_index=ei,
        edge_attr=torch.cat([rel, rel.norm(dim=1, keepdim=True)], 1),
        num_nodes=nx * ny,
    )


@pytest.mark.parametrize("name", MESH_OPERATORS)
def test_registry_builds_mesh_operators_and_config_matches_constructor(name):
    cfg_cls, cls = OPERATORS[name]
    assert [f.name for f in fields(cfg_cls)] == list(inspect.signature(cls.__init__).parameters)[1:]
    model = build_operator(name, {"in_channels": 6, "out_channels": 2})
    assert model(grid_mesh(5, 4)).shape == (20, 2)


def test_khop_pattern_is_the_pattern_of_the_adjacency_power():
    g = grid_mesh(6, 5)
    n = g.num_nodes
    a = torch.zeros(n, n)
    a[g.edge_index[1], g.edge_index[0]] = 1
    a += torch.eye(n)
    for k in (1, 2, 3):
        dense = torch.linalg.matrix_power(a, k) > 0
        got = torch.zeros(n, n, dtype=torch.bool)
        e = khop_edges(g.edge_index, n, k)
        got[e[0], e[1]] = True
        assert torch.equal(got, dense.T) and e.shape[1] == int(dense.sum())


def test_windows_follow_the_morton_curve_within_each_graph():
    g = grid_mesh(8, 8)
    batch = torch.cat([torch.zeros(64, dtype=torch.long), torch.ones(64, dtype=torch.long)])
    pos = torch.cat([g.pos, g.pos])
    order = morton_order(pos, batch)
    assert (batch[order][:64] == 0).all()
    # On a 2^k grid the Morton curve visits each 2x2 block in turn: 4 consecutive nodes share a block.
    blocks = (g.pos[order[:64]] / 0.1).round().long() // 2
    assert all(len({tuple(b) for b in blocks[i : i + 4].tolist()}) == 1 for i in range(0, 64, 4))
    ei = torch.cat([g.edge_index, g.edge_index + 64], 1)
    e = attention_edges(ei, pos, batch, khop=1, window=2, dilation=3)
    assert (batch[e[0]] == batch[e[1]]).all()
    rank = torch.empty(128, dtype=torch.long)
    rank[order] = torch.arange(128)
    extra = set(map(tuple, e.T.tolist())) - set(map(tuple, khop_edges(ei, 128, 1).T.tolist()))
    assert extra and all(abs(rank[s] - rank[t]) in (3, 6) for s, t in extra)


def test_sparse_block_attention_equals_dense_masked_attention():
    torch.manual_seed(0)
    g = grid_mesh(5, 4, channels=16)
    block = TransformerBlock(16, 4, gated_attention=True, backend="reference")
    edges = attention_edges(g.edge_index, g.pos, torch.zeros(20, dtype=torch.long), khop=2, self_loops=False)
    assert (edges[0] != edges[1]).all()  # no node attends to itself, as the authors' adjacency
    angles = rope_angles(g.pos, 4)
    out, _ = block(g.x, EllGraph.from_edge_index(edges, 20), edges, angles, torch.zeros(20, dtype=torch.long), None)
    # Dense: full N x N logits, masked to the pattern.
    h = block.norm1(g.x)
    q, k, v = block._heads(h)
    q, k = rotary(q, angles), rotary(k, angles)
    s = torch.einsum("ihd,jhd->hij", q, k) / 2.0
    allowed = torch.zeros(20, 20, dtype=torch.bool)
    allowed[edges[1], edges[0]] = True
    att = torch.softmax(s.masked_fill(~allowed, float("-inf")), -1)
    gate = torch.sigmoid(block.gate_proj(h)).view(20, 4, 4).transpose(1, 2)  # (N, H, Dh): channel c = d H + h
    x = g.x + block.proj((torch.einsum("hij,jhd->ihd", att, v) * gate).transpose(1, 2).flatten(-2))
    x = x + block.mlp(block.norm2(x))
    torch.testing.assert_close(out, x, rtol=1e-5, atol=1e-5)


def test_rope_sees_relative_positions_in_physical_units_so_a_model_transfers_between_meshes():
    """Translation changes nothing, rotation does; and since the angles are coordinates x fixed
    frequencies (not scaled per mesh), a node's output is the same on a larger mesh wherever
    the model cannot see the extension (farther than n_blocks hops)."""
    torch.manual_seed(0)
    g = grid_mesh(6, 5)
    rope = GraphTransformer(dim=32, heads=4, n_blocks=2, n_global=0, pos_encoding="rope", rope_base=10.0).eval()
    shifted = g.clone()
    shifted.pos = g.pos + torch.tensor([3.7, -1.2])
    torch.testing.assert_close(rope(g), rope(shifted), rtol=1e-4, atol=1e-4)
    zero = torch.zeros(30, dtype=torch.long)
    edges = attention_edges(g.edge_index, g.pos, zero, self_loops=False)
    x = torch.randn(30, 32)
    wide, rotated = (
        rope.blocks[0](x, EllGraph.from_edge_index(edges, 30), edges, rope_angles(p, 8, 10.0), zero, None)[0]
        for p in (10 * g.pos, 10 * g.pos.flip(1))
    )
    assert (wide - rotated).abs().max() > 1e-2  # node spacing 1: angles of order 1 rad
    big = grid_mesh(12, 5)  # the same 6 x 5 corner (node ids differ), 6 more columns
    keep = (big.pos[:, 0] < 0.55).nonzero().flatten()
    small_ei, _ = subgraph(keep, big.edge_index, relabel_nodes=True, num_nodes=60)
    small = Data(x=big.x[keep], pos=big.pos[keep], edge_index=small_ei, num_nodes=len(keep))
    interior = big.pos[keep][:, 0] < 0.25  # 3+ hops from the cut at x = 0.5
    torch.testing.assert_close(rope(small)[interior], rope(big)[keep][interior], rtol=1e-4, atol=1e-5)
    assert torch.equal(rope_angles(small.pos, 8), rope_angles(big.pos, 8)[keep])


def test_graph_transformer_has_the_published_layer_shapes():
    """graph-physics' EncodeTransformDecode (hidden 128, 4 heads): 4-layer MLP encoder with an
    RMSNorm, decoder without; per block two RMSNorms, separate Q, K, V and an output projection
    with biases, and a gated MLP (RMSNorm, two 128 -> 384 maps, 384 -> 128)."""
    dim, n_in, n_out, blocks = 128, 11, 2, 4
    lin = lambda a, b: a * b + b  # noqa: E731
    encoder = lin(n_in, dim) + 3 * lin(dim, dim) + dim
    decoder = 3 * lin(dim, dim) + lin(dim, n_out)
    block = 2 * dim + 4 * lin(dim, dim) + (dim + 2 * lin(dim, 3 * dim) + lin(3 * dim, dim))
    model = GraphTransformer(n_in, n_out, dim=dim, heads=4, n_blocks=blocks)
    assert sum(p.numel() for p in model.parameters()) == encoder + decoder + blocks * block == 960_130
    assert isinstance(model.blocks[0].norm1, torch.nn.RMSNorm) and model.blocks[0].gate_proj is None
    assert [tuple(m.weight.shape) for m in model.blocks[0].mlp.modules() if isinstance(m, torch.nn.Linear)] == [(384, 128)] * 2 + [
        (128, 384)
    ]
    gated = GraphTransformer(n_in, n_out, dim=dim, heads=4, n_blocks=blocks, gated_attention=True)
    assert sum(p.numel() for p in gated.parameters()) == 960_130 + blocks * lin(dim, dim)


def test_random_edges_stay_within_each_graph_and_only_in_training():
    torch.manual_seed(0)
    a, b = grid_mesh(5, 4, seed=1), grid_mesh(4, 6, seed=2)
    batch = Batch.from_data_list([a, b])
    base = attention_edges(batch.edge_index, batch.pos, batch.batch, self_loops=False)
    more = attention_edges(batch.edge_index, batch.pos, batch.batch, self_loops=False, random_ratio=0.5)
    assert more.shape[1] > base.shape[1] + 0.3 * batch.edge_index.shape[1]
    assert (batch.batch[more[0]] == batch.batch[more[1]]).all() and (more[0] != more[1]).all()
    model = GraphTransformer(dim=16, heads=2, n_blocks=1, random_edges=0.5).eval()
    torch.testing.assert_close(model(batch), model(batch))  # evaluation: the mesh's own edges only


def test_receptive_field_grows_with_khop_windows_and_global_tokens():
    torch.manual_seed(0)
    g = grid_mesh(12, 3)
    far = 35  # the opposite corner from node 0, 11 hops away

    def reaches(model):
        x = g.x.clone().requires_grad_(True)
        model(g.clone().update({"x": x}))[far].sum().backward()
        return bool(x.grad[0].abs().sum() > 0)

    assert not reaches(GraphTransformer(dim=16, heads=2, n_blocks=2))
    assert reaches(GraphTransformer(dim=16, heads=2, n_blocks=2, n_global=1))
    assert reaches(GraphTransformer(dim=16, heads=2, n_blocks=2, khop=6))
    rank = torch.argsort(morton_order(g.pos, torch.zeros(36, dtype=torch.long)))
    assert reaches(GraphTransformer(dim=16, heads=2, n_blocks=2, window=1, dilation=int(abs(rank[far] - rank[0]))))


@pytest.mark.parametrize(
    "model", [lambda: GraphTransformer(dim=32, heads=4, n_blocks=2, n_global=2), lambda: MeshGraphNet(latent=16, n_steps=3)]
)
def test_batched_graphs_do_not_talk_to_each_other(model):
    torch.manual_seed(0)
    m = model()
    a, b = grid_mesh(5, 4, seed=1), grid_mesh(4, 6, seed=2)
    both = m(Batch.from_data_list([a, b]))
    torch.testing.assert_close(both[:20], m(a), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(both[20:], m(b), rtol=1e-4, atol=1e-5)


def test_meshgraphnet_is_permutation_equivariant():
    torch.manual_seed(0)
    m = MeshGraphNet(latent=16, n_steps=3)
    g = grid_mesh(5, 4)
    perm = torch.randperm(20)
    inv = torch.argsort(perm)
    p = Data(x=g.x[perm], pos=g.pos[perm], edge_index=inv[g.edge_index], edge_attr=g.edge_attr, num_nodes=20)
    torch.testing.assert_close(m(p), m(g)[perm], rtol=1e-4, atol=1e-5)


def test_bad_mesh_operator_settings_are_refused():
    with pytest.raises(InputError, match="dim 30 is not divisible by heads 4"):
        GraphTransformer(dim=30, heads=4)
    with pytest.raises(InputError, match="pos_encoding 'sin'"):
        GraphTransformer(pos_encoding="sin")
    with pytest.raises(InputError, match="need khop >= 1"):
        GraphTransformer(khop=0)


def test_meshgraphnet_has_the_published_layer_shapes():
    """Pfaff et al. 2021 (Appendix A.1): latent 128, 15 message-passing steps, every MLP two
    hidden layers of 128 with ReLU and a linear output, LayerNorm after every MLP but the
    decoder's. The count follows from those shapes for CylinderFlow's inputs (velocity 2 +
    9 one-hot node types in, 2 out; edges: relative position 2 and its norm)."""
    latent, steps, node_in, edge_in, out = 128, 15, 2 + 9, 3, 2

    def mlp_count(n_in: int, n_out: int, norm: bool) -> int:
        linear = (n_in * latent + latent) + (latent * latent + latent) + (latent * n_out + n_out)
        return linear + (2 * n_out if norm else 0)

    expected = (
        mlp_count(node_in, latent, True)
        + mlp_count(edge_in, latent, True)
        + steps * (mlp_count(3 * latent, latent, True) + mlp_count(2 * latent, latent, True))
        + mlp_count(latent, out, False)
    )
    model = MeshGraphNet(in_channels=node_in, out_channels=out, edge_channels=edge_in, latent=latent, n_steps=steps)
    assert sum(p.numel() for p in model.parameters()) == expected == 2_332_930
    linears = [m for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(128, 128), (128, 128), (2, 128)]
