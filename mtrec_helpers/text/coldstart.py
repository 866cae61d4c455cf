"""The cold-start protocol and the slices notebook 02b reports.

**Cold start, in folds.** The catalogue is split into ``COLD_FOLDS`` seeded disjoint folds. For each
fold, its items are withheld from training: their interactions are removed from the training
sequences (never an input, never a label) and the items are left out of the training softmax (never
a negative either — a model that saw them only as wrong answers would learn to bury them). They stay
in the catalogue at validation and test, where they can be a user's held-out item: fold k's **cold**
users are those whose test item is in fold k. As the folds cover the catalogue, every user is cold in
exactly one fold, and the cold slice pooled over the folds has every user — not the few whose test
item happens to fall in one withheld share.

**Long tail.** On the standard split (nothing withheld), the users whose test item is among the
least popular fifth of the catalogue by training interactions.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from mtrec_helpers.core.protocol import SPLITS
from mtrec_helpers.data.store import ProcessedData

COLD_FOLDS = 5
TAIL_SHARE = 0.2


@dataclass
class ColdStartSplit:
    """The training data with the cold items' interactions removed, and which items are cold."""

    data: ProcessedData
    cold_items: np.ndarray  # item indices withheld from training
    exclude: torch.Tensor  # (V,) bool: the cold items, left out of the training softmax

    def cold_users(self, split: str = "test") -> np.ndarray:
        """Users whose held-out ``split`` item is cold."""
        return np.flatnonzero(np.isin(self.data.targets(split), self.cold_items))


def item_folds(n_items: int, folds: int, seed: int = 0) -> list[np.ndarray]:
    """The real item indices 1..``n_items`` in ``folds`` seeded disjoint folds of near-equal size."""
    if not 2 <= folds <= n_items:
        raise ValueError(f"COLD_FOLDS={folds}: use at least 2 folds and at most one per item ({n_items})")
    order = np.random.default_rng(seed).permutation(np.arange(1, n_items + 1))
    return [np.sort(part) for part in np.array_split(order, folds)]


def withhold(data: ProcessedData, items: np.ndarray, tag: str) -> ColdStartSplit:
    """``data`` with ``items``' training interactions removed (see the module docstring); ``tag``
    names the withholding in the manifest's fingerprint, so runs trained on it never mix."""
    frame = data.interactions
    drop = (frame["split"] == SPLITS[0]).to_numpy() & np.isin(frame["item_idx"].to_numpy(), items)
    key = hashlib.sha256(f"{data.manifest['fingerprint']}|cold|{tag}".encode()).hexdigest()
    withheld = dataclasses.replace(
        data,
        interactions=frame[~drop].reset_index(drop=True),
        manifest={**data.manifest, "fingerprint": key, "cold_start": tag},
    )
    exclude = torch.zeros(data.n_items + 2, dtype=torch.bool)
    exclude[torch.from_numpy(np.asarray(items, dtype=np.int64))] = True
    return ColdStartSplit(withheld, np.sort(items), exclude)


def fold_splits(data: ProcessedData, folds: int, seed: int = 0) -> list[ColdStartSplit]:
    """One :class:`ColdStartSplit` per fold of :func:`item_folds`."""
    return [withhold(data, items, f"fold{k}of{folds}|seed{seed}")
            for k, items in enumerate(item_folds(data.n_items, folds, seed))]  # fmt: skip


def train_popularity(data: ProcessedData) -> np.ndarray:
    """Training interactions per vocabulary index (V,)."""
    train = data.interactions.loc[data.interactions["split"] == SPLITS[0], "item_idx"].to_numpy()
    return np.bincount(train, minlength=data.n_items + 2)


def long_tail_items(data: ProcessedData, share: float = TAIL_SHARE) -> np.ndarray:
    """The least popular ``share`` of the real items by training interactions (ties by index)."""
    counts = train_popularity(data)[1 : data.n_items + 1]
    order = np.argsort(counts, kind="stable")
    return np.sort(order[: round(share * data.n_items)] + 1)


def long_tail_users(data: ProcessedData, split: str = "test", share: float = TAIL_SHARE) -> np.ndarray:
    """Users whose held-out ``split`` item is in the long tail."""
    return np.flatnonzero(np.isin(data.targets(split), long_tail_items(data, share)))
