"""Chapter 02b's measurements: per cold-start fold, the fold's id model with and without mapped items
against the content-only baseline on that fold's cold users, and pooled over the folds (every user is
cold in exactly one); the mappers for 02's own model too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from mtrec_helpers.core.evaluation import RankingResult, ScoreFn, evaluate, paired_bootstrap
from mtrec_helpers.pretraining.models import SeqRecModel, scorer
from mtrec_helpers.text.coldstart import ColdStartSplit, train_popularity
from mtrec_helpers.text.mapping import (
    MapperConfig,
    n_positions,
    positions_read,
    train_mapper,
    training_positions,
    with_mapped_items,
)

SPLITS = ("valid", "test")
Key = TypeVar("Key")
Rankings = dict[str, dict[str, RankingResult]]
"""split → model name → ranking (of the users of one slice)."""


def fit_mappers(
    model: SeqRecModel,
    sequences: Sequence[np.ndarray],
    withheld: torch.Tensor | None,
    features: Mapping[str, np.ndarray],
    config: MapperConfig,
) -> dict[str, nn.Linear]:
    """One mapper per feature set, each trained against ``model`` on its own training ``sequences``;
    the ``withheld`` items (V,) bool (if any), PAD and MASK are out of the mapper's softmax. Under a step
    budget (MAX_STEPS) only the positions the mappers read are encoded."""
    read = None
    if config.max_batches:
        count, hidden = n_positions(model, sequences), model.config.hidden_size
        drawn = [positions_read(x.shape[1], hidden, count, len(x), config) for x in features.values()]
        read = np.unique(np.concatenate(drawn))
    positions = training_positions(model, sequences, read=read)
    exclude = torch.zeros(model.config.vocab_size, dtype=torch.bool)
    exclude[[0, model.config.mask_id]] = True
    if withheld is not None:
        exclude |= withheld.cpu()
    return {name: train_mapper(x, model, positions, exclude, config) for name, x in features.items()}


def fold_models(
    model: SeqRecModel, split: ColdStartSplit, features: Mapping[str, np.ndarray], config: MapperConfig
) -> dict[str, SeqRecModel]:
    """One fold's models: the id-only fold model and, per feature set, it with the withheld items'
    rows written by that set's mapper (every trained item keeps its id rows)."""
    mappers = fit_mappers(model, split.data.sequences("train"), split.exclude, features, config)
    counts = train_popularity(split.data)
    mapped = {name: with_mapped_items(model, mappers[name], x, counts, 0.0) for name, x in features.items()}
    return {"id_only": model, **mapped}


def fold_rankings(
    models: Mapping[str, SeqRecModel],
    split: ColdStartSplit,
    content: ScoreFn,
    device: torch.device | str = "cpu",
    valid_sample: np.ndarray | None = None,
) -> Rankings:
    """One fold's ``models`` and the content-only baseline, ranked on its cold validation and test users
    only (a fifth of the users with five folds: the other users' rankings were never read); validation,
    which only chooses the features, on those of ``valid_sample`` (VALID_USERS; None: all)."""
    scorers: dict[str, ScoreFn] = {name: scorer(m) for name, m in models.items()}
    scorers["content_only"] = content
    users = {s: split.cold_users(s) for s in SPLITS}
    if valid_sample is not None:
        users["valid"] = np.intersect1d(users["valid"], valid_sample)
    return {s: {name: evaluate(score, split.data, s, device=device, users=users[s])
                for name, score in scorers.items()}
            for s in SPLITS}  # fmt: skip


def pooled(per_fold: Sequence[Rankings]) -> Rankings:
    """Every fold's cold users as one slice per split and model (each user appears once)."""
    return {s: {name: RankingResult.joined([fold[s][name] for fold in per_fold]) for name in per_fold[0][s]}
            for s in SPLITS}  # fmt: skip


def choose_on_validation(scores: Mapping[Key, float]) -> Key:
    """The candidate with the best validation score (never chosen on test); NaN never wins, and when
    every score is NaN the first candidate is kept."""
    scored = {key: value for key, value in scores.items() if not np.isnan(value)}
    return max(scored, key=scored.__getitem__) if scored else next(iter(scores))


def choose_prior(valid: Mapping[float, RankingResult], n_boot: int = 2000, seed: int = 0) -> float:
    """The prior k of the dual path, from the validation rankings of each candidate: 0 (every trained
    item keeps its id rows) unless a k > 0 beats it with the paired interval above zero — the model
    that works is only changed where validation shows the change helps; among those, the best mean."""
    if 0.0 not in valid:
        raise ValueError(f"PRIORS={list(valid)}: include 0.0, the id model's own rows, to compare with")
    better = {
        k: float(ranking.ndcg(10).mean())
        for k, ranking in valid.items()
        if k != 0.0
        and paired_bootstrap(ranking.ndcg(10), valid[0.0].ndcg(10), n_boot=n_boot, seed=seed).ci[0] > 0
    }
    return choose_on_validation(better) if better else 0.0


def mean_ndcg(ranking: RankingResult) -> float:
    """Mean NDCG@10 of a slice (NaN when it is empty)."""
    return float(ranking.ndcg(10).mean()) if len(ranking.ranks) else float("nan")
