"""The evaluation protocol's contract with the data: the leave-one-out splits, and what a dataset must
offer for its users to be ranked (the processed data of chapter 01 is one)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

SPLITS = ("train", "valid", "test")
"""Leave-one-out: each user's last interaction is ``test``, the one before ``valid``, the rest ``train``."""


class RankedData(Protocol):
    """Users with item sequences and one held-out item per evaluation split."""

    @property
    def n_users(self) -> int: ...

    @property
    def n_items(self) -> int: ...

    def sequences(self, through: str = "train") -> list[np.ndarray]:
        """Each user's item indices in time order, up to and including split ``through``."""
        ...

    def targets(self, split: str) -> np.ndarray:
        """The held-out item index of each user for ``valid`` or ``test``."""
        ...
