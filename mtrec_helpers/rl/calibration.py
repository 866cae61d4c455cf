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
from typing import Any

import numpy as np
import pandas as pd
import torch

from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.rl.user_model import HeldOut, UserModel, click_auc, fit_record

Choice = tuple[slice, torch.Tensor, torch.Tensor]
"""(rows, attraction (B, V), candidates (B, V)) of one batch of held-out users."""
Masked = tuple[slice, torch.Tensor]
"""(rows, attraction (B, V) with −inf at every item the user cannot pick) of one batch."""


def choices(model: UserModel, held: HeldOut) -> Iterator[Choice]:
    """Each batch's attraction scores and candidate items, computed as they are consumed."""
    for rows, seen, candidates in held.batches():
        yield rows, model.attraction(seen.float()), candidates


def masked(batches: Iterable[Choice]) -> Iterator[Masked]:
    """Each batch's attraction with −inf outside its candidates (what every positive scale needs)."""
    for rows, attraction, candidates in batches:
        yield rows, attraction.masked_fill(~candidates, -torch.inf)


def target_log_probabilities(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B,) log softmax(logits)[row, target] of each row."""
    return torch.log_softmax(logits, dim=1)[torch.arange(len(logits)), targets]


def log_likelihood(batches: Iterable[Masked], held: HeldOut, scale: float) -> float:
    """Mean log P(held-out item) under softmax(scale · attraction) over the candidates, for scale > 0:
    s · (−inf) = −inf, so the logits are, bit for bit, s · attraction masked afterwards."""
    parts = [target_log_probabilities(scale * values, held.items[rows]) for rows, values in batches]
    return float(torch.cat(parts).mean())


def mean_log_likelihoods(batches: Iterable[Choice], held: HeldOut, scales: Sequence[float]) -> list[float]:
    """Mean log P(held-out item) under softmax(s · attraction) over the unseen catalogue, for each
    s in ``scales`` (≥ 0), from one pass over ``batches``."""
    parts: list[list[torch.Tensor]] = [[] for _ in scales]
    for rows, attraction, candidates in batches:
        values = attraction.masked_fill(~candidates, -torch.inf)
        for part, scale in zip(parts, scales, strict=True):  # at s = 0 every candidate's logit is 0
            logits = scale * values if scale > 0 else values.isfinite().log()  # (0 · −inf is NaN)
            part.append(target_log_probabilities(logits, held.items[rows]))
    return [float(torch.cat(part).mean()) for part in parts]


def choice_log_likelihood(model: UserModel, held: HeldOut, scale: float) -> float:
    """Mean log P(held-out item) under softmax(scale · attraction) over the unseen catalogue."""
    return mean_log_likelihoods(choices(model, held), held, [scale])[0]


def uniform_log_likelihood(held: HeldOut) -> float:
    """The same likelihood for a user who picks uniformly among the unseen items (scale 0)."""
    counts = torch.cat([candidates.sum(1) for _, _, candidates in held.batches()])
    return float(-torch.log(counts.float()).mean())


def fit_attraction_scale(model: UserModel, held: HeldOut, low: float = 0.0, high: float = 5.0) -> float:
    """The maximum-likelihood scale (golden-section search; the log-likelihood is concave in s)."""
    return _fitted_scale(list(masked(choices(model, held))), held, low, high)[0]


def _fitted_scale(cached: list[Masked], held: HeldOut, low: float, high: float) -> tuple[float, float]:
    """The golden-section search over ``cached`` attraction scores (computed and masked once: the
    validation sample of 10,000 users × 26,744 items is 1.1 GB at ML-20M's shape) and the
    log-likelihood at the scale found. Each point is computed from the interval exactly as in the
    textbook two-point round, then looked up: where it equals, to the last bit, the point the
    previous round kept (most rounds), that evaluation is saved, and the search is the same as
    evaluating both every round. Every point lies inside (low, high), so above 0 when low ≥ 0."""
    values: dict[float, float] = {}

    def loglik(scale: float) -> float:
        if scale not in values:
            values[scale] = log_likelihood(cached, held, scale)
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
    cached, valid_aucs = [], []
    for rows, attraction, candidates in choices(model, valid):
        valid_aucs.append(click_auc(attraction, candidates, valid.items[rows]))
        cached.append((rows, attraction.masked_fill_(~candidates, -torch.inf)))  # in place: kept once
    scale, on_valid = _fitted_scale(cached, valid, 0.0, 5.0)
    test_aucs: list[torch.Tensor] = []

    def test_choices() -> Iterator[Choice]:
        for rows, attraction, candidates in choices(model, test):
            test_aucs.append(click_auc(attraction, candidates, test.items[rows]))
            yield rows, attraction, candidates

    on_test = mean_log_likelihoods(test_choices(), test, [scale, 1.0])
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
