"""The one train/valid/test partition every built-in generator writes into its store."""

from __future__ import annotations

import numpy as np


def split_indices(n: int, valid_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """A seeded random partition of range(n) into train / valid / test (at least one test case)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test_fraction))
    n_valid = max(1 if valid_fraction > 0 else 0, round(n * valid_fraction))
    return {
        "train": np.sort(perm[n_valid + n_test :]),
        "valid": np.sort(perm[:n_valid]),
        "test": np.sort(perm[n_valid : n_valid + n_test]),
    }
