"""Notebook 02b's results: each slice's metrics per model, and the paired differences that matter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mtrec_helpers.core.comparison import paired
from mtrec_helpers.core.evaluation import RankingResult

MODELS = ("id_only", "text_aware", "content_only")
SLICE_KEYS = ("ndcg@10", "ndcg@10_ci", "hr@10", "hr@10_ci", "n_users")
COMPARISONS = (("text_aware", "id_only"), ("text_aware", "content_only"))


def slice_results(
    rankings: Mapping[str, RankingResult], users: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Each model's NDCG@10 and HR@10 (with 95% intervals) over ``users`` (rows of the rankings)."""
    return {
        name: {key: value for key, value in result.select(users).summary((10,), n_boot, seed).items()
               if key in SLICE_KEYS}
        for name, result in rankings.items()
    }  # fmt: skip


def slice_comparisons(
    rankings: Mapping[str, RankingResult], users: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Paired bootstrap of the text-aware model against each other model over ``users``."""
    chosen = {name: result.select(users) for name, result in rankings.items()}
    return {f"{a}_vs_{b}": paired(chosen, a, b, n_boot=n_boot, seed=seed) for a, b in COMPARISONS}


def nearest_neighbours(
    titles: Mapping[int, str], vectors: np.ndarray, items: list[int], k: int = 5
) -> dict[str, list[str]]:
    """For each item index in ``items``, the titles of its ``k`` nearest items by cosine of the unit
    ``vectors`` (V, D) (PAD and MASK never)."""
    similarity = vectors @ vectors[items].T  # (V, len(items))
    similarity[[0, -1]] = -np.inf
    similarity[items, np.arange(len(items))] = -np.inf
    order = np.argsort(-similarity, axis=0, kind="stable")[:k]
    return {titles[item]: [titles[int(i)] for i in order[:, n]] for n, item in enumerate(items)}
