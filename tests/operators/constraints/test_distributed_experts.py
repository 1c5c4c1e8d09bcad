"""Experts shared out over two torch.distributed (gloo) processes give the single-process
weights, and, after the usual average of gradients over ranks, the single-process gradient."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from surrogate.operators.constraints.hard_constrained_operator import HardConstrainedOperator
from surrogate.operators.constraints.pdes import DiffusionSorptionPDE
from surrogate.solvers.diffusion_sorption import random_initial_condition


def problem():
    pde = DiffusionSorptionPDE(6, 10, 20.0)
    u0 = random_initial_condition(3, 10, seed=7)
    gen = torch.Generator().manual_seed(8)
    basis = torch.randn(3, 4, 6, 10, generator=gen, dtype=torch.float64) * 0.1 + 0.1
    c = torch.randn(3, 6, 10, generator=gen, dtype=torch.float64)
    return pde, u0, basis, c


def run(distributed):
    pde, u0, basis, c = problem()
    op = HardConstrainedOperator(None, pde, (3,), reg=1e-3, tol=1e-12, max_iter=100, on_failure="raise", distributed=distributed)
    b = basis.clone().requires_grad_(True)
    u = op.combine(b, op.weights(b, u0))  # 3 samples x 3 experts = 9 fits, 5 per rank (one padded)
    (u * c).sum().backward()
    return u.detach(), b.grad


def worker(rank, port, path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        u, grad = run(distributed=True)
        dist.all_reduce(grad)
        grad /= 2  # what DDP does with every gradient
        if rank == 0:
            torch.save({"u": u, "grad": grad}, path)
    finally:
        dist.destroy_process_group()


def test_two_ranks_match_one_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(port, str(tmp_path / "out.pt")), nprocs=2, join=True)
    got = torch.load(tmp_path / "out.pt")
    u, grad = run(distributed=False)
    torch.testing.assert_close(got["u"], u, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got["grad"], grad, rtol=1e-8, atol=1e-10)
