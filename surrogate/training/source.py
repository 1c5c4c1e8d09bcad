"""Offline source: shuffled batches of store windows, reproducible across a resume."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from surrogate.datasets.windows import WindowDataset


class OfflineSource:
    """Batches of `WindowDataset` items; one iteration is one epoch.

    The shuffling generator's state is part of `state_dict`, so a run resumed at an epoch
    boundary sees exactly the batches the uninterrupted run would have seen.
    """

    def __init__(self, dataset: WindowDataset, batch_size: int, seed: int = 0, num_workers: int = 0) -> None:
        self.dataset = dataset
        self.generator = torch.Generator().manual_seed(seed)
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=True,
            drop_last=len(dataset) > batch_size,
            generator=self.generator,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
        )

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])
