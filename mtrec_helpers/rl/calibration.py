"""Calibrating the simulated user on held-out interactions.

What MovieLens can calibrate, and what it cannot:

- **attraction scale** — the conditional logit picks item j with P ∝ exp(s · attraction_j). By the
  logit's independence of irrelevant alternatives the same s holds for a slate and for the whole
  catalogue, so s is fitted by maximum likelihood of each user's real *next* item (validation split)
  among every item the user had not seen, and checked on the test split
  (:func:`fit_attraction_scale`, :func:`choice_log_likelihood`);
- **satisfaction** — the rating model's predictions against held-out ratings, bin by bin
  (:func:`rating_calibration`);
- **not identifiable** — the no-click utility, fatigue and leaving: MovieLens logs ratings, not
  impressions or sessions (no record of what was shown and skipped, or when a visit ended). These
  stay behavioural assumptions, which is why a second simulator variant with other values is used
  for the held-out check.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.rl.user_model import HeldOut, UserModel, fit_record, row_moments


@dataclass
class ChoiceBatch:
    """One batch of held-out users' choice sets: the attraction of every item each user could pick
    (−inf at the others) on the columns the user model scores — the catalogue, or only its head when
    EASE covers the head (catalogues over 5,000 items), where every other item has the same attraction
    (``tail``, (B, 1)) and enters once, with the log of how many candidates share it — and the held-out
    item: its column (C, one past the last, outside the head), attraction and whether it is a candidate."""

    values: torch.Tensor  # (B, C)
    column: torch.Tensor  # (B,)
    target: torch.Tensor  # (B,)
    candidate: torch.Tensor  # (B,) bool
    tail: torch.Tensor | None = None  # (B, 1)
    tail_count: torch.Tensor | None = None  # (B, 1) candidates outside the head

    def log_probabilities(self, scale: float) -> torch.Tensor:
        """(B,) log P(held-out item) under softmax(scale · attraction) over the candidates (scale ≥ 0;
        s · (−inf) = −inf, so for s > 0 the logits are, bit for bit, s · attraction masked afterwards)."""
        logits = scale * self.values if scale > 0 else self.values.isfinite().log()  # (0 · −inf is NaN)
        rows = torch.arange(len(logits))
        if self.tail is None or self.tail_count is None:
            return torch.log_softmax(logits, dim=1)[rows, self.column]
        shared = self.tail_count.log()  # the tail's items enter as one logit, s · tail + log(count)
        every = torch.log_softmax(torch.cat([logits, scale * self.tail + shared], 1), dim=1)[
            rows, self.column
        ]
        inside = self.column < logits.shape[1]
        return torch.where(inside, every, torch.where(self.candidate, every - shared[:, 0], -torch.inf))

    def auc(self) -> torch.Tensor:
        """(B,) share of each user's other candidates the held-out item outscores, ties counting half
        (with every column: ``user_model.click_auc``'s counts, bit for bit)."""
        negatives = self.values.isfinite()
        inside = self.column < self.values.shape[1]
        negatives[torch.arange(len(negatives))[inside], self.column[inside]] = False
        target = self.target[:, None]
        below = ((self.values < target) & negatives).sum(1, dtype=torch.int32) + 0.5 * (
            (self.values == target) & negatives
        ).sum(1, dtype=torch.int32)
        count = negatives.sum(1, dtype=torch.int32)
        if self.tail is None or self.tail_count is None:
            return below / count
        others = self.tail_count[:, 0] - (~inside & self.candidate).int()
        tail = self.tail[:, 0]
        return (below + others * ((tail < self.target).float() + 0.5 * (tail == self.target).float())) / (
            count + others
        )


def choices(model: UserModel, held: HeldOut, head: bool = True) -> Iterator[ChoiceBatch]:
    """Each batch's choice sets, computed as they are consumed — on the head EASE covers when it
    covers one (``head=False``: on every column, the definition the head's are tested against)."""
    items, position = model.ease.items, model.ease.position
    for rows, seen, candidates in held.batches():
        targets = held.items[rows]
        index = torch.arange(len(targets))
        candidate = candidates[index, targets]
        if items is None or position is None or not head:
            attraction = model.attraction(seen.float())
            target = attraction[index, targets]
            yield ChoiceBatch(attraction.masked_fill_(~candidates, -torch.inf), targets, target, candidate)
            continue
        own = model.ease.own_scores(seen)
        centre, spread = row_moments(own, seen.shape[1])
        attraction, tail = (own - centre) / spread, -centre / spread
        column = position[targets].masked_fill(position[targets] < 0, len(items))
        target = torch.where(
            column < len(items), attraction[index, column.clamp(max=len(items) - 1)], tail[:, 0]
        )
        inside = candidates[:, items]
        count = (candidates.sum(1, keepdim=True) - inside.sum(1, keepdim=True)).float()
        yield ChoiceBatch(
            attraction.masked_fill_(~inside, -torch.inf), column, target, candidate, tail, count
        )


def log_likelihood(batches: Iterable[ChoiceBatch], scale: float) -> float:
    """Mean log P(held-out item) under softmax(scale · attraction) over the candidates."""
    return float(torch.cat([batch.log_probabilities(scale) for batch in batches]).mean())


def mean_log_likelihoods(batches: Iterable[ChoiceBatch], scales: Sequence[float]) -> list[float]:
    """:func:`log_likelihood` at each of ``scales`` from one pass over ``batches``."""
    parts: list[list[torch.Tensor]] = [[] for _ in scales]
    for batch in batches:
        for part, scale in zip(parts, scales, strict=True):
            part.append(batch.log_probabilities(scale))
    return [float(torch.cat(part).mean()) for part in parts]


def choice_log_likelihood(model: UserModel, held: HeldOut, scale: float) -> float:
    """Mean log P(held-out item) under softmax(scale · attraction) over the unseen catalogue."""
    return log_likelihood(choices(model, held), scale)


def uniform_log_likelihood(held: HeldOut) -> float:
    """The same likelihood for a user who picks uniformly among the unseen items (scale 0)."""
    counts = torch.cat([candidates.sum(1) for _, _, candidates in held.batches()])
    return float(-torch.log(counts.float()).mean())


def fit_attraction_scale(model: UserModel, held: HeldOut, low: float = 0.0, high: float = 5.0) -> float:
    """The maximum-likelihood scale (golden-section search; the log-likelihood is concave in s)."""
    return _fitted_scale(list(choices(model, held)), low, high)[0]


def _fitted_scale(cached: list[ChoiceBatch], low: float, high: float) -> tuple[float, float]:
    """The golden-section search over ``cached`` choice sets (computed once: the validation sample of
    10,000 users is 0.2 GB on ML-20M's 5,000-item head, 1.1 GB over its 26,744 items) and the
    log-likelihood at the scale found. Each point is computed from the interval exactly as in the
    textbook two-point round, then looked up: where it equals, to the last bit, the point the
    previous round kept (most rounds), that evaluation is saved, and the search is the same as
    evaluating both every round. Every point lies inside (low, high), so above 0 when low ≥ 0."""
    values: dict[float, float] = {}

    def loglik(scale: float) -> float:
        if scale not in values:
            values[scale] = log_likelihood(cached, scale)
        return values[scale]

    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    for _ in range(40):
        left, right = b - ratio * (b - a), a + ratio * (b - a)
        if loglik(left) < loglik(right):
            a = left
        else:
            b = right
    scale = (a + b) / 2
    return scale, loglik(scale)


def rating_calibration(model: UserModel, held: HeldOut, bins: int = 5) -> pd.DataFrame:
    """Held-out ratings grouped by quantile bins of the prediction: mean predicted vs mean real."""
    predicted = model.ratings.predict(held.users, held.items).numpy()
    frame = pd.DataFrame({"predicted": predicted, "actual": held.ratings.astype(float)})
    frame["bin"] = pd.qcut(frame["predicted"], bins, labels=False, duplicates="drop")
    return frame.groupby("bin").agg(
        predicted=("predicted", "mean"), actual=("actual", "mean"), n=("actual", "size")
    )


def calibrate(model: UserModel, data: ProcessedData, valid_users: np.ndarray | None = None) -> dict[str, Any]:
    """Fit the attraction scale on the validation split (its ``valid_users``, default all) and
    report the fit on it and on every test user, with the user model's held-out fit on both
    (``fit``: rating error and click AUC, :func:`~.user_model.held_out_fit`'s figures) — from the
    validation scores the search keeps and one pass over the test users."""
    valid, test = HeldOut.of(data, "valid", valid_users), HeldOut.of(data, "test")
    cached = list(choices(model, valid))
    valid_aucs = [batch.auc() for batch in cached]
    scale, on_valid = _fitted_scale(cached, 0.0, 5.0)
    test_aucs: list[torch.Tensor] = []

    def test_choices() -> Iterator[ChoiceBatch]:
        for batch in choices(model, test):
            test_aucs.append(batch.auc())
            yield batch

    on_test = mean_log_likelihoods(test_choices(), [scale, 1.0])
    return {
        "fit": {"valid": fit_record(model, valid, valid_aucs), "test": fit_record(model, test, test_aucs)},
        "attraction_scale": scale,
        "choice_loglik_valid": on_valid,
        "choice_loglik_test": on_test[0],
        "choice_loglik_test_scale1": on_test[1],
        "choice_loglik_test_uniform": uniform_log_likelihood(test),
        "rating_calibration_max_gap": float(
            np.abs(np.diff(rating_calibration(model, test).to_numpy()[:, :2])).max()
        ),
    }
