"""Notebook 02b's results: each slice's metrics per model, and the paired differences that matter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from mtrec_helpers.core.comparison import paired
from mtrec_helpers.core.evaluation import RankingResult, minimum_detectable_effect
from mtrec_helpers.pretraining.models import SeqRecModel

SLICE_KEYS = ("ndcg@10", "ndcg@10_ci", "hr@10", "hr@10_ci", "n_users")


def slice_results(
    rankings: Mapping[str, RankingResult], n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Each model's NDCG@10 and HR@10 (with 95% intervals) over one slice's users (the rankings'
    rows)."""
    return {
        name: {key: value for key, value in result.summary((10,), n_boot, seed).items() if key in SLICE_KEYS}
        for name, result in rankings.items()
    }


def slice_comparisons(
    rankings: Mapping[str, RankingResult],
    chosen: str,
    others: Sequence[str],
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Paired bootstrap of ``chosen`` against each of ``others`` over one slice, with the minimum
    detectable effect of the slice (80% power): how large a difference its users could show."""
    records = {}
    for other in others:
        record = paired(rankings, chosen, other, n_boot=n_boot, seed=seed)
        differences = rankings[chosen].ndcg(10) - rankings[other].ndcg(10)
        record["ndcg@10_mde"] = (
            minimum_detectable_effect(differences) if len(differences) > 1 else float("nan")
        )
        records[f"{chosen}_vs_{other}"] = record
    return records


@torch.no_grad()
def item_vectors(model: SeqRecModel) -> np.ndarray:
    """Every vocabulary index's output row e_i (V, H) as the model scores it, L2-normalised."""
    table = model.bert.embeddings.word_embeddings.weight
    return torch.nn.functional.normalize(table.float(), dim=-1).cpu().numpy()


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
