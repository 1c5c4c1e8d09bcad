"""Windows `(k input steps -> m target steps)` of a store's trajectories, by index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from surrogate.datasets.store import SPLITS, GridStore
from surrogate.errors import InputError


class WindowDataset(Dataset):
    """Every window of `n_input + n_target` consecutive steps in the trajectories of one split.

    Item i is a dict:
        x       (k, C, *space)  input steps
        y       (m, C, *space)  target steps
        params  (P,)            physical parameters (at the last input step when they vary in time)
        mask    (1, *space)     1 fluid / 0 solid (ones when the store has no mask)
        traj, t                 trajectory index and the first step of the window
    and, when the store has them:
        static       (S, *space)  static input fields
        param_steps  (m, P)       the parameters at each target step's input step
    """

    def __init__(
        self,
        store: GridStore,
        split: str,
        n_input: int = 1,
        n_target: int = 1,
        fields: Sequence[str] | None = None,
    ) -> None:
        if split not in SPLITS:
            raise InputError(f"split {split!r}: expected one of {SPLITS}")
        if n_input < 1 or n_target < 1 or n_input + n_target > store.n_steps:
            raise InputError(
                f"{store.path}: windows of {n_input} input + {n_target} target steps do not fit in trajectories of {store.n_steps} steps"
            )
        self.store, self.k, self.m = store, n_input, n_target
        names = list(fields) if fields else list(store.channel_names)
        store.require_fields(names)
        self.channels = [store.channel_names.index(n) for n in names]
        self._all_channels = self.channels == list(range(len(store.channel_names)))
        self.trajectories = np.asarray(store.splits[split])
        self.per_traj = store.n_steps - (n_input + n_target) + 1
        # Per-trajectory tensors built once, so that an item costs one HDF5 read.
        self._params = [torch.from_numpy(p) for p in store.params.astype(np.float32)]
        ones = torch.ones(1, *store.schema.space_shape)
        self._masks = [ones] * store.n_trajectories if store.mask is None else [torch.from_numpy(m) for m in store.mask]
        self._static = [torch.from_numpy(store.read_static(int(b))) for b in range(store.n_trajectories)] if store.static_layouts else None
        self._schedule = None if store.param_schedule is None else torch.from_numpy(store.param_schedule.astype(np.float32))

    def __len__(self) -> int:
        return len(self.trajectories) * self.per_traj

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        traj = int(self.trajectories[i // self.per_traj])
        t = i % self.per_traj
        w = self.store.read(traj, t, t + self.k + self.m)  # (k + m, C_all, *space)
        if not self._all_channels:
            w = w[:, self.channels]
        window = torch.from_numpy(w)
        item: dict[str, torch.Tensor | int] = {
            "x": window[: self.k],
            "y": window[self.k :],
            "params": self._params[traj],
            "mask": self._masks[traj],
            "traj": traj,
            "t": t,
        }
        if self._static is not None:
            item["static"] = self._static[traj]
        if self._schedule is not None:  # the step before each target: the last input step, then each prediction's
            steps = self._schedule[traj, t + self.k - 1 : t + self.k - 1 + self.m]  # (m, P)
            item["params"], item["param_steps"] = steps[0], steps
        return item
