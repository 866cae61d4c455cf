"""The cold-start protocol and the slices notebook 02b reports.

**Cold start.** A seeded share of the catalogue (``COLD_SHARE`` = 15%) is withheld from training:
its interactions are removed from the training sequences (never an input, never a label) and the
items are left out of the training softmax (never a negative either — a model that saw them only as
wrong answers would learn to bury them). They stay in the catalogue at validation and test, where
they can be a user's held-out item: the **cold** slice is the users whose test item is cold.

**Long tail.** On the standard split (nothing withheld), the users whose test item is among the
least popular fifth of the catalogue by training interactions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from mtrec_helpers.core.evaluation import ScoreFn, evaluate
from mtrec_helpers.core.protocol import SPLITS
from mtrec_helpers.data.store import ProcessedData

COLD_SHARE = 0.15
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

    def valid_ndcg(self, score_fn: ScoreFn, device: torch.device | str = "cpu") -> float:
        """Mean validation NDCG@10 over the users whose validation item is cold (NaN without any):
        what a model meant for new items is chosen on."""
        users = self.cold_users("valid")
        if len(users) == 0:
            return math.nan
        return float(evaluate(score_fn, self.data, "valid", device=device, users=users).ndcg(10).mean())


def cold_start_split(data: ProcessedData, share: float = COLD_SHARE, seed: int = 0) -> ColdStartSplit:
    """Withhold a seeded ``share`` of the items from training (see the module docstring)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"COLD_SHARE={share}: the share of items withheld must be between 0 and 1")
    rng = np.random.default_rng(seed)
    items = np.arange(1, data.n_items + 1)
    cold = np.sort(rng.choice(items, size=max(1, round(share * data.n_items)), replace=False))
    frame = data.interactions
    drop = (frame["split"] == SPLITS[0]).to_numpy() & np.isin(frame["item_idx"].to_numpy(), cold)
    key = hashlib.sha256(f"{data.manifest['fingerprint']}|cold|{share}|{seed}".encode()).hexdigest()
    withheld = dataclasses.replace(
        data,
        interactions=frame[~drop].reset_index(drop=True),
        manifest={**data.manifest, "fingerprint": key, "cold_start": {"share": share, "seed": seed}},
    )
    exclude = torch.zeros(data.n_items + 2, dtype=torch.bool)
    exclude[torch.from_numpy(cold)] = True
    return ColdStartSplit(withheld, cold, exclude)


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
