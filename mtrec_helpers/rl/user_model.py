"""The simulator's user model ("world model"), fitted on the training interactions only.

It is deliberately a *different* family of models from the Transformer the agents use, so that an
agent cannot score well by exploiting its own scorer:

- **attraction** — how likely a user is to pick an item from a slate: EASE (Steck 2019) scores
  of the user's current history, standardised per user over the catalogue. After every click the
  history grows and the scores move (``x_u W`` gains row ``W[i]``).
- **satisfaction** — how much the user enjoys an item once chosen: a biased matrix factorisation of
  the explicit ratings, r̂ = μ + b_u + b_i + p_u·q_i (alternating ridge regressions), mapped to
  [0, 1] by (r̂ − min) / (max − min) of the rating scale.

Its held-out fit is measured on each user's held-out interactions (valid/test): rating RMSE of the
satisfaction model, and click AUC of the attraction model (the held-out item against every item the
user has not interacted with).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch

from mtrec_helpers.core.evaluation import history_mask, split_histories
from mtrec_helpers.core.memory import reusing_heap
from mtrec_helpers.core.protocol import SPLITS
from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.pretraining.baselines import MAX_ITEMS, ItemItemModel, fit_ease


@dataclass
class RatingModel:
    """Biased matrix factorisation: r̂(u, i) = μ + b_u + b_i + p_u·q_i."""

    mean: float
    user_bias: torch.Tensor  # (U,)
    item_bias: torch.Tensor  # (V,)
    user_factors: torch.Tensor  # (U, d)
    item_factors: torch.Tensor  # (V, d)

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Predicted ratings for matching (user, item) index tensors of any shape."""
        dot = (self.user_factors[users] * self.item_factors[items]).sum(-1)
        return self.mean + self.user_bias[users] + self.item_bias[items] + dot


@dataclass
class Incidence:
    """The ratings grouped by one side (users or items), as a CSR pattern over the other side."""

    order: np.ndarray  # ratings sorted by row (stable)
    counts: scipy.sparse.csr_matrix  # (rows, columns): how often each row rated each column

    @classmethod
    def of(cls, rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> Incidence:
        order = np.argsort(rows, kind="stable")
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=shape[0]))])
        ones = np.ones(len(rows), dtype=np.float64)
        return cls(order, scipy.sparse.csr_matrix((ones, columns[order], indptr), shape=shape))

    def weighted(self, values: np.ndarray) -> scipy.sparse.csr_matrix:
        """The same pattern with one value per rating (``values`` in the ratings' original order)."""
        return scipy.sparse.csr_matrix(
            (values[self.order], self.counts.indices, self.counts.indptr), self.counts.shape
        )


def ridge_rows(incidence: Incidence, features: np.ndarray, targets: np.ndarray, reg: float) -> np.ndarray:
    """For every row r: argmin_w Σ_{ratings (r, c)} (target − features[c]·w)² + reg·‖w‖².

    Features depend only on the rating's column (an item for the user side, a user for the item
    side), so each row's Gram matrix is its incidence row times the columns' outer products,
    Σ_c n_rc f_c f_cᵀ — one sparse product over the ratings, never one outer product per rating.
    """
    width = features.shape[1]
    upper = np.triu_indices(width)
    outer = features[:, upper[0]] * features[:, upper[1]]  # (columns, width·(width+1)/2)
    packed = incidence.counts @ outer
    gram = np.zeros((len(packed), width, width))
    gram[:, upper[0], upper[1]] = packed
    gram[:, upper[1], upper[0]] = packed
    gram += reg * np.eye(width)
    moment = incidence.weighted(targets) @ features
    return np.linalg.solve(gram, moment[:, :, None])[:, :, 0]


def fit_rating_model(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    shape: tuple[int, int],
    dim: int = 16,
    reg: float = 5.0,
    sweeps: int = 15,
    seed: int = 0,
) -> RatingModel:
    """Biased MF by alternating ridge regressions; ``shape`` = (number of users, item vocabulary)."""
    generator = torch.Generator().manual_seed(seed)
    u, i = users.astype(np.int64), items.astype(np.int64)
    r = ratings.astype(np.float64)
    by_user, by_item = Incidence.of(u, i, shape), Incidence.of(i, u, shape[::-1])
    mean = float(r.mean())
    user_side = np.zeros((shape[0], dim + 1))  # [p_u, b_u]
    item_side = torch.randn(shape[1], dim, generator=generator, dtype=torch.float64).numpy() * 0.1
    item_side = np.concatenate([item_side, np.zeros((shape[1], 1))], 1)  # [q_i, b_i]
    for _ in range(sweeps):
        features = np.concatenate([item_side[:, :dim], np.ones((shape[1], 1))], 1)
        user_side = ridge_rows(by_user, features, r - mean - item_side[i, dim], reg)
        features = np.concatenate([user_side[:, :dim], np.ones((shape[0], 1))], 1)
        item_side = ridge_rows(by_item, features, r - mean - user_side[u, dim], reg)
    user_side, item_side = torch.from_numpy(user_side).float(), torch.from_numpy(item_side).float()
    return RatingModel(mean, user_side[:, dim], item_side[:, dim], user_side[:, :dim], item_side[:, :dim])


def row_moments(scores: torch.Tensor, width: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's mean and standard deviation (B, 1) (at least 1e-6) over ``width`` columns (default:
    those of ``scores``): ``scores`` and a 0 in every column beyond them — the catalogue of an EASE
    fitted on its head, from the head's scores alone."""
    width = width or scores.shape[1]
    if width == scores.shape[1]:
        return scores.mean(1, keepdim=True), scores.std(1, keepdim=True).clamp(min=1e-6)
    centre = scores.sum(1, keepdim=True) / width
    squares = (scores - centre).square().sum(1, keepdim=True) + (width - scores.shape[1]) * centre.square()
    return centre, (squares / (width - 1)).sqrt().clamp(min=1e-6)


def standardise(scores: torch.Tensor) -> torch.Tensor:
    """Each row minus its mean, over its standard deviation."""
    centre, spread = row_moments(scores)
    return (scores - centre) / spread


@dataclass
class UserModel:
    """Attraction (EASE weights) and satisfaction (biased MF) of every user for every item."""

    ease: ItemItemModel  # item-item weights (on the catalogue's head when it is large)
    ratings: RatingModel
    rating_scale: tuple[float, float]

    def scores(self, history: torch.Tensor) -> torch.Tensor:
        """Raw EASE scores (B, V) of multi-hot histories (B, V); a click on i adds W's row i."""
        return self.ease.apply(history)

    def attraction(self, history: torch.Tensor) -> torch.Tensor:
        """Standardised EASE scores (B, V) of multi-hot histories (B, V)."""
        return standardise(self.scores(history))

    @property
    def typical_satisfaction(self) -> float:
        """The satisfaction of the training split's mean rating: a click that neither buys nor costs
        session time (``SimulatorConfig.horizon_strength``)."""
        low, high = self.rating_scale
        return float(min(max((self.ratings.mean - low) / (high - low), 0.0), 1.0))

    def satisfaction(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Predicted enjoyment in [0, 1] for matching (user, item) index tensors."""
        low, high = self.rating_scale
        return ((self.ratings.predict(users, items) - low) / (high - low)).clamp(0.0, 1.0)


def fit_user_model(
    data: ProcessedData, l2: float = 100.0, dim: int = 16, reg: float = 5.0, max_items: int = MAX_ITEMS
) -> UserModel:
    """Fit the user model on the training split only (valid and test stay held out)."""
    train = data.interactions[data.interactions["split"] == SPLITS[0]]
    ratings = fit_rating_model(
        train["user_idx"].to_numpy(),
        train["item_idx"].to_numpy(),
        train["rating"].to_numpy(),
        (data.n_users, data.n_items + 2),
        dim=dim,
        reg=reg,
    )
    scale = data.vocab["rating_scale"]
    return UserModel(fit_ease(data, l2, max_items=max_items), ratings, (float(scale[0]), float(scale[1])))


HELD_OUT_BATCH = 1024
"""Users per batch when scoring held-out choices over the catalogue (memory: batch × catalogue)."""


@dataclass
class HeldOut:
    """Each user's held-out interaction of one split and the history before it."""

    users: torch.Tensor  # (U,)
    items: torch.Tensor  # (U,)
    ratings: np.ndarray  # (U,)
    histories: list[np.ndarray]  # each user's items before the held-out interaction
    n_columns: int  # catalogue width (n_items + 2)

    @classmethod
    def of(cls, data: ProcessedData, split: str, users: np.ndarray | None = None) -> HeldOut:
        """Every user's (or only ``users'``, in user order) held-out ``split`` interaction."""
        held = data.interactions[data.interactions["split"] == split].sort_values("user_idx")
        histories = split_histories(data, split)
        if users is not None:
            held = held[held["user_idx"].isin(users)]
            histories = [histories[u] for u in held["user_idx"]]
        return cls(
            torch.from_numpy(held["user_idx"].to_numpy().astype(np.int64)),
            torch.from_numpy(held["item_idx"].to_numpy().astype(np.int64)),
            held["rating"].to_numpy(),
            histories,
            data.n_items + 2,
        )

    def batches(self, size: int | None = None) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
        """(rows, seen, candidates) for ``size`` (default :data:`HELD_OUT_BATCH`) users at a time: the
        multi-hot history (B, V) and the items each user could pick next — neither seen nor
        padding/mask (B, V)."""
        size = size or HELD_OUT_BATCH
        for start in reusing_heap(range(0, len(self.items), size)):
            rows = slice(start, min(start + size, len(self.items)))
            seen = history_mask(self.histories[rows], self.n_columns, torch.device("cpu"))
            allowed = ~seen
            allowed[:, [0, -1]] = False
            yield rows, seen, allowed


def held_out_fit(
    model: UserModel, data: ProcessedData, split: str = "test", users: np.ndarray | None = None
) -> dict[str, float]:
    """Rating RMSE/MAE of the satisfaction model and click AUC of the attraction model on ``split``
    (every user's held-out interaction, or only ``users'``)."""
    held = HeldOut.of(data, split, users)
    aucs = [click_auc(model.attraction(seen.float()), candidates, held.items[rows])
            for rows, seen, candidates in held.batches()]  # fmt: skip
    return fit_record(model, held, aucs)


def click_auc(scores: torch.Tensor, candidates: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B,) share of each row's other unseen items (``candidates`` less the target) that the target
    outscores, ties counting half."""
    index = torch.arange(len(scores))
    target = scores[index, targets]
    negatives = candidates.clone()
    negatives[index, targets] = False
    below = ((scores < target[:, None]) & negatives).sum(1, dtype=torch.int32) + 0.5 * (
        (scores == target[:, None]) & negatives
    ).sum(1, dtype=torch.int32)
    return below / negatives.sum(1, dtype=torch.int32)


def fit_record(model: UserModel, held: HeldOut, aucs: list[torch.Tensor]) -> dict[str, float]:
    """Rating RMSE/MAE of the satisfaction model on ``held`` and the mean of the per-user ``aucs``."""
    error = model.ratings.predict(held.users, held.items).numpy() - held.ratings
    return {
        "rating_rmse": float(np.sqrt(np.mean(error**2))),
        "rating_mae": float(np.mean(np.abs(error))),
        "click_auc": float(torch.cat(aucs).mean()),
    }
