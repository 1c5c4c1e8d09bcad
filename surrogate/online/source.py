"""OnlineSource: training batches drawn from a stream server's buffer, for the same Trainer.

The task turns a list of (step s, step s + 1) pairs into its batch with `collate`: the grid
task with `grid_collate` (fields stacked into channels), the mesh task into graphs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from surrogate.errors import InputError
from surrogate.online.protocol import StepMessage
from surrogate.online.server import StreamServer

Pair = tuple[StepMessage, StepMessage]
Collate = Callable[[list[Pair]], dict[str, Any]]


def grid_collate(field_names: Sequence[str], param_names: Sequence[str]) -> Collate:
    """Pairs -> {"x", "y": (B, 1, C, *space) float32, "params": (B, P), "mask": (B, 1, *space)}."""
    names, keys = list(field_names), list(param_names)

    def collate(pairs: list[Pair]) -> dict[str, Any]:
        x = np.stack([np.stack([p.fields[n] for n in names]) for p, _ in pairs]).astype(np.float32, copy=False)  # (B, C, *space)
        y = np.stack([np.stack([q.fields[n] for n in names]) for _, q in pairs]).astype(np.float32, copy=False)
        params = np.array([[p.parameters[k] for k in keys] for p, _ in pairs], dtype=np.float32)
        xt = torch.from_numpy(x)[:, None]
        return {"x": xt, "y": torch.from_numpy(y)[:, None], "params": torch.from_numpy(params), "mask": torch.ones_like(xt[:, 0, :1])}

    return collate


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) under torch.distributed, (0, 1) without it."""
    return (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)


def gather(obj: Any, world_size: int) -> list[Any]:
    """obj from every rank, in rank order ([obj] without torch.distributed)."""
    if world_size == 1:
        return [obj]
    out: list[Any] = [None] * world_size
    dist.all_gather_object(out, obj)
    return out


class OnlineSource:
    """`steps_per_epoch` batches of (step s -> s + 1) pairs per iteration.

    Training waits until the buffer holds `watermark` pairs; `wait_fraction` reports the share
    of batches that had to wait for data. Under torch.distributed each rank has its own
    server and buffer, and the ranks agree before every batch that all of them have data, so
    a stream that runs dry stops every rank together instead of leaving the others waiting
    in an all-reduce.
    """

    def __init__(
        self,
        server: StreamServer,
        batch_size: int,
        steps_per_epoch: int,
        watermark: int,
        collate: Collate | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        self.server, self.batch_size, self.steps_per_epoch = server, batch_size, steps_per_epoch
        self.watermark, self.timeout_s = max(watermark, 1), timeout_s
        self.collate = collate
        self.batches = self.waited = 0
        self._restored = False

    def __len__(self) -> int:
        return self.steps_per_epoch

    def _wait(self) -> bool:
        """Wait for the watermark; False when the timeout passed first."""
        t0 = time.monotonic()
        waited = False
        while len(self.server.buffer) < self.watermark:
            waited = True
            if time.monotonic() - t0 > self.timeout_s:
                return False
            time.sleep(0.01)
        self.waited += waited
        return True

    def peek(self) -> Pair:
        """One pair from the buffer once the watermark is reached (its schema, its time step)."""
        if not self._wait():
            raise TimeoutError(f"the stream delivered no {self.watermark} training pairs in {self.timeout_s:.0f} s")
        return self.server.sample()

    def batch(self) -> dict[str, torch.Tensor]:
        ready = self._wait()
        if dist.is_available() and dist.is_initialized():  # every rank stops if one rank's stream ran dry
            flag = torch.tensor([int(ready)])
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            ready = bool(flag.item())
        if not ready:
            raise TimeoutError(
                f"the stream delivered no {self.watermark} training pairs in {self.timeout_s:.0f} s (on this rank or another)"
            )
        if self.collate is None:
            raise RuntimeError("OnlineSource.collate is not set: the task sets it from the stream's schema")
        pairs = [self.server.sample() for _ in range(self.batch_size)]
        self.batches += 1
        return self.collate(pairs)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for _ in range(self.steps_per_epoch):
            yield self.batch()

    @property
    def wait_fraction(self) -> float:
        return self.waited / self.batches if self.batches else 0.0

    def state_dict(self) -> dict[str, Any]:
        """Batch count and the servers' states (buffer, steps seen, finished simulations): rank
        0's under `server`, every rank's under `ranks` (a collective call under torch.distributed)."""
        rank, world_size = rank_and_world()
        states = gather(self.server.state_dict(), world_size)
        return {"batches": self.batches, "server": states[0], **({"ranks": states} if world_size > 1 else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores this rank's server once, before the stream resumes (a later call sets the
        count only). A checkpoint of N ranks resumes on N ranks."""
        self.batches = int(state["batches"])
        if self._restored or "server" not in state:
            return
        rank, world_size = rank_and_world()
        ranks = state.get("ranks", [state["server"]])
        if len(ranks) != world_size:
            raise InputError(f"the checkpoint holds the streams of {len(ranks)} training process(es); resume with --nproc {len(ranks)}")
        self.server.load_state_dict(ranks[rank])
        self._restored = True
