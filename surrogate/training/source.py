"""Offline source: shuffled batches of store windows, reproducible across a resume and sharded
across distributed ranks.

Each epoch draws one permutation of all windows from (seed, epoch) and rank r of W takes
every W-th index of it (`DistributedSampler`). With a global batch of G windows, rank r's
k-th batch holds entries r, r + W, ... of the k-th block of G in the permutation, so the W
ranks together see exactly the global batch a single process would see: the same losses
and gradients (averaged by DDP) whatever the number of processes.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, DistributedSampler

from surrogate.datasets.windows import WindowDataset
from surrogate.errors import InputError


class OfflineSource:
    """Batches of `WindowDataset` items for one rank; one iteration is one epoch."""

    def __init__(
        self,
        dataset: WindowDataset,
        batch_size: int,
        seed: int = 0,
        num_workers: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size % world_size:
            raise InputError(f"data.batch_size {batch_size} (global) is not divisible by the {world_size} processes")
        if len(dataset) < batch_size:
            raise InputError(f"{len(dataset)} training windows cannot fill one global batch of {batch_size}")
        self.dataset, self.epoch = dataset, 0
        self.sampler: DistributedSampler[int] = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size // world_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
        )

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
