"""Strong simple baselines on the same split and evaluator: most-popular, item-kNN and EASE.

All three are fitted on the training part of every sequence only; at test time a user's history
(training items plus the validation item) is their input, exactly as for the Transformers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.evaluation import evaluate, history_mask


def cooccurrence(data: ProcessedData) -> torch.Tensor:
    """Item-item co-occurrence counts XᵀX over users' training items, shape (V, V), float64."""
    x = history_mask(data.sequences("train"), data.n_items + 2, torch.device("cpu")).double()
    return x.T @ x


@dataclass
class PopularityModel:
    """Scores every item by its number of training interactions."""

    counts: torch.Tensor

    def score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        """The same popularity scores for every user."""
        return self.counts.expand(len(histories), -1)


@dataclass
class ItemItemModel:
    """Scores items by summing an item-item weight matrix over the user's history: x_u W."""

    weights: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)

    def score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        """x_u W for each user's multi-hot history x_u."""
        return history_mask(histories, self.weights.shape[0], self.weights.device).float() @ self.weights


def fit_popularity(data: ProcessedData) -> PopularityModel:
    """Most-popular: training interaction counts."""
    train = data.interactions.loc[data.interactions["split"] == "train", "item_idx"].to_numpy()
    counts = np.bincount(train, minlength=data.n_items + 2).astype(np.float32)
    return PopularityModel(torch.from_numpy(counts)[None, :])


def fit_itemknn(data: ProcessedData, neighbours: int, gram: torch.Tensor | None = None) -> ItemItemModel:
    """Item-kNN: cosine similarity of co-occurrence, each item keeping its ``neighbours`` most similar."""
    gram = cooccurrence(data) if gram is None else gram
    norms = torch.sqrt(torch.diag(gram)).clamp_min(1e-12)
    similarity = (gram / norms[:, None] / norms[None, :]).float()
    similarity.fill_diagonal_(0.0)
    k = min(neighbours, similarity.shape[0] - 1)
    top = torch.topk(similarity, k=k, dim=0)  # for each target item j, its k closest items i
    pruned = torch.zeros_like(similarity).scatter_(0, top.indices, top.values)
    return ItemItemModel(pruned, {"neighbours": neighbours})


def fit_ease(data: ProcessedData, l2: float, gram: torch.Tensor | None = None) -> ItemItemModel:
    """EASE (Steck 2019): B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹, with a zero diagonal."""
    gram = (cooccurrence(data) if gram is None else gram).clone()
    gram += l2 * torch.eye(gram.shape[0], dtype=gram.dtype)
    precision = torch.linalg.inv(gram)
    weights = -precision / torch.diag(precision)[None, :]
    weights.fill_diagonal_(0.0)
    return ItemItemModel(weights.float(), {"l2": l2})


@dataclass
class Tuned:
    """A model chosen on validation NDCG@10, with the whole search."""

    model: Any
    value: float
    search: dict[float, float]


def tune(
    fit: Callable[[ProcessedData, Any, torch.Tensor], ItemItemModel],
    grid: Sequence[float],
    data: ProcessedData,
    gram: torch.Tensor | None = None,
) -> Tuned:
    """Fit ``fit(data, value)`` for each grid value; keep the best validation NDCG@10."""
    if not grid:
        raise ValueError("the tuning grid is empty: give at least one value (KNN_NEIGHBOURS, EASE_L2).")
    gram = cooccurrence(data) if gram is None else gram
    search: dict[float, float] = {}
    fitted: list[tuple[float, float, Any]] = []
    for value in grid:
        model = fit(data, value, gram)
        search[value] = float(evaluate(model.score, data, "valid").ndcg(10).mean())
        fitted.append((search[value], value, model))
    _, value, model = max(fitted, key=lambda entry: entry[0])
    return Tuned(model=model, value=value, search=search)


def fit_baselines(
    data: ProcessedData, knn_grid: Sequence[float], ease_grid: Sequence[float]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Most-popular, tuned item-kNN and tuned EASE; returns the models and each tuning search."""
    gram = cooccurrence(data)
    knn = tune(fit_itemknn, knn_grid, data, gram)
    ease = tune(fit_ease, ease_grid, data, gram)
    models = {"pop": fit_popularity(data), "itemknn": knn.model, "ease": ease.model}
    tuning = {
        "itemknn": {"param": "neighbours", "best": knn.value, "valid_ndcg@10": knn.search},
        "ease": {"param": "l2", "best": ease.value, "valid_ndcg@10": ease.search},
    }
    return models, tuning
