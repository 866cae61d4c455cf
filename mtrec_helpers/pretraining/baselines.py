"""Strong simple baselines on the same split and evaluator: most-popular, item-kNN and EASE.

All three are fitted on the training part of every sequence only; at test time a user's history
(training items plus the validation item) is their input, exactly as for the Transformers.

Item-kNN and EASE hold a dense item × item matrix, and EASE inverts one (O(V³)). Both are exact for
catalogues up to ``max_items`` (:data:`MAX_ITEMS`: ML-100k, ML-1M, ml-latest-small). Beyond it they
are fitted on the ``max_items`` most popular items only — EASE with the constraint B_ij = 0 unless
both items are in that head — and every other item scores 0 (it is never recommended above a
positively scored head item); notebook 02 says so when it happens. At ML-20M's 26,744 items the
exact matrices would be 2.9 GB each and one inversion minutes on a laptop, per grid value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse
import torch

from mtrec_helpers.core.evaluation import evaluate, history_mask
from mtrec_helpers.data.store import ProcessedData

MAX_ITEMS = 5000
"""Largest catalogue item-kNN and EASE are exact for; beyond it they use the most popular items."""


def head_items(data: ProcessedData, max_items: int = MAX_ITEMS) -> torch.Tensor | None:
    """The ``max_items`` most popular item indices (ascending) when the catalogue is larger, else None."""
    if max_items < 1:
        raise ValueError(f"ITEM_ITEM_MAX={max_items}: give a positive number of items")
    if data.n_items <= max_items:
        return None
    counts = fit_popularity(data).counts[0].clone()
    counts[[0, -1]] = -1.0  # PAD and MASK are never items
    return torch.sort(torch.argsort(counts, descending=True, stable=True)[:max_items]).values


def head_positions(items: torch.Tensor, n_columns: int) -> torch.Tensor:
    """Each catalogue column's position among the head ``items`` (−1 outside the head)."""
    position = torch.full((n_columns,), -1, dtype=torch.long)
    position[items] = torch.arange(len(items))
    return position


def cooccurrence(data: ProcessedData, items: torch.Tensor | None = None) -> torch.Tensor:
    """Item-item co-occurrence counts XᵀX over users' training items, float64: shape (V, V), or
    (H, H) over the head ``items``; built from a sparse X, never a dense users × items matrix."""
    sequences = data.sequences("train")
    rows = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    cols = np.concatenate(sequences).astype(np.int64) if sequences else np.zeros(0, np.int64)
    n_columns = data.n_items + 2
    if items is not None:
        position = head_positions(items, n_columns).numpy()
        rows, cols, n_columns = rows[position[cols] >= 0], position[cols][position[cols] >= 0], len(items)
    x = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sequences), n_columns))
    x.data[:] = 1.0  # multi-hot: an item twice in a history counts once
    return torch.from_numpy((x.T @ x).toarray())


@dataclass
class PopularityModel:
    """Scores every item by its number of training interactions."""

    counts: torch.Tensor

    def score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        """The same popularity scores for every user."""
        return self.counts.expand(len(histories), -1)


@dataclass
class ItemItemModel:
    """Scores items by summing an item-item weight matrix over the user's history: x_u W. With
    ``items`` (the head of a large catalogue), W covers those items only and the rest score 0."""

    weights: torch.Tensor  # (V, V), or (H, H) over ``items``
    params: dict[str, Any] = field(default_factory=dict)
    items: torch.Tensor | None = None
    n_columns: int = 0  # V, the catalogue width (PAD and MASK included)
    position: torch.Tensor | None = field(init=False, default=None)  # column → row of W (−1: outside)

    def __post_init__(self) -> None:
        self.n_columns = self.n_columns or self.weights.shape[0]
        self.position = None if self.items is None else head_positions(self.items, self.n_columns)
        if self.items is not None:  # row-major for the sparse product (EASE's B is a transposed view:
            self.weights = self.weights.contiguous()  # 2.0 s instead of 0.12 s per 1,024 users)

    def apply(self, multi_hot: torch.Tensor) -> torch.Tensor:
        """x W for multi-hot rows x (B, V): (B, V) scores."""
        if self.items is None:
            return multi_hot @ self.weights
        scores = torch.zeros(len(multi_hot), self.n_columns, dtype=self.weights.dtype)
        scores[:, self.items] = self.own_scores(multi_hot)
        return scores

    def own_scores(self, multi_hot: torch.Tensor) -> torch.Tensor:
        """x W on the columns W covers — the head (B, H), or the catalogue (B, V) without one — for
        multi-hot rows x (B, V), bool or float; every other column scores 0 (:meth:`read`)."""
        if self.items is None:
            return multi_hot.to(self.weights.dtype) @ self.weights
        # a history holds a few hundred of the head's items: a sparse product is 4x faster here
        return torch.sparse.mm(multi_hot[:, self.items].to(self.weights.dtype).to_sparse(), self.weights)

    def own_rows(self, items: torch.Tensor) -> torch.Tensor:
        """W's rows for ``items`` on the columns W covers (n, H): what clicking each adds to
        :meth:`own_scores` (a zero row for an item outside the head)."""
        if self.position is None:
            return self.weights[items]
        rows = torch.zeros(len(items), self.weights.shape[1], dtype=self.weights.dtype)
        inside = self.position[items] >= 0
        rows[inside] = self.weights[self.position[items[inside]]]
        return rows

    def read(self, own: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The scores (B, K) at catalogue columns ``items`` (B, K) from :meth:`own_scores` rows (B, H)."""
        if self.position is None:
            return own.gather(1, items)
        at = self.position[items]
        return own.gather(1, at.clamp(min=0)).masked_fill(at < 0, 0.0)

    def score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        """x_u W for each user's multi-hot history x_u."""
        return self.apply(history_mask(histories, self.n_columns, torch.device("cpu")).float())


def fit_popularity(data: ProcessedData) -> PopularityModel:
    """Most-popular: training interaction counts."""
    train = data.interactions.loc[data.interactions["split"] == "train", "item_idx"].to_numpy()
    counts = np.bincount(train, minlength=data.n_items + 2).astype(np.float32)
    return PopularityModel(torch.from_numpy(counts)[None, :])


def fit_itemknn(
    data: ProcessedData, neighbours: int, gram: torch.Tensor | None = None, max_items: int = MAX_ITEMS
) -> ItemItemModel:
    """Item-kNN: cosine similarity of co-occurrence, each item keeping its ``neighbours`` most similar."""
    items = head_items(data, max_items)
    gram = cooccurrence(data, items) if gram is None else gram
    norms = torch.sqrt(torch.diag(gram)).clamp_min(1e-12)
    similarity = (gram / norms[:, None] / norms[None, :]).float()
    similarity.fill_diagonal_(0.0)
    k = min(neighbours, similarity.shape[0] - 1)
    top = torch.topk(similarity, k=k, dim=0)  # for each target item j, its k closest items i
    pruned = torch.zeros_like(similarity).scatter_(0, top.indices, top.values)
    return ItemItemModel(pruned, {"neighbours": neighbours}, items, data.n_items + 2)


def fit_ease(
    data: ProcessedData, l2: float, gram: torch.Tensor | None = None, max_items: int = MAX_ITEMS
) -> ItemItemModel:
    """EASE (Steck 2019): B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹, with a zero diagonal."""
    items = head_items(data, max_items)
    gram = (cooccurrence(data, items) if gram is None else gram).clone()
    gram += l2 * torch.eye(gram.shape[0], dtype=gram.dtype)
    precision = torch.linalg.inv(gram)
    weights = -precision / torch.diag(precision)[None, :]
    weights.fill_diagonal_(0.0)
    return ItemItemModel(weights.float(), {"l2": l2}, items, data.n_items + 2)


@dataclass
class Tuned:
    """A model chosen on validation NDCG@10, with the whole search."""

    model: Any
    value: float
    search: dict[float, float]


def tune(
    fit: Callable[..., ItemItemModel],
    grid: Sequence[float],
    data: ProcessedData,
    gram: torch.Tensor | None = None,
    max_items: int = MAX_ITEMS,
    users: np.ndarray | None = None,
) -> Tuned:
    """Fit ``fit(data, value)`` for each grid value; keep the best validation NDCG@10 (on ``users``,
    default all; only the best model is held at any time)."""
    if not grid:
        raise ValueError("the tuning grid is empty: give at least one value (KNN_NEIGHBOURS, EASE_L2).")
    gram = cooccurrence(data, head_items(data, max_items)) if gram is None else gram
    search: dict[float, float] = {}
    best: tuple[float, float, Any] | None = None
    for value in grid:
        model = fit(data, value, gram, max_items)
        search[value] = float(evaluate(model.score, data, "valid", users=users).ndcg(10).mean())
        if best is None or search[value] > best[0]:
            best = (search[value], value, model)
    assert best is not None
    return Tuned(model=best[2], value=best[1], search=search)


def fit_baselines(
    data: ProcessedData,
    knn_grid: Sequence[float],
    ease_grid: Sequence[float],
    max_items: int = MAX_ITEMS,
    users: np.ndarray | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Most-popular, tuned item-kNN and tuned EASE (on the validation ``users``, default all);
    returns the models and each tuning search."""
    gram = cooccurrence(data, head_items(data, max_items))
    knn = tune(fit_itemknn, knn_grid, data, gram, max_items, users)
    ease = tune(fit_ease, ease_grid, data, gram, max_items, users)
    models = {"pop": fit_popularity(data), "itemknn": knn.model, "ease": ease.model}
    head = min(data.n_items, max_items)
    tuning = {
        "itemknn": {"param": "neighbours", "best": knn.value, "valid_ndcg@10": knn.search, "items": head},
        "ease": {"param": "l2", "best": ease.value, "valid_ndcg@10": ease.search, "items": head},
    }
    return models, tuning
