"""The runs of notebook 06: fuse the members' score matrices and rank everything on one split."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.ensemble.fusion import (
    FusionFit,
    fit_softmax_fusion,
    reciprocal_rank_fusion,
    uniform,
    weighted_sum,
)
from mtrec_helpers.ensemble.scores import eligible_items, zscore
from mtrec_helpers.evaluation import RankingResult, ScoreFn, evaluate

ENSEMBLES = ("ensemble_softmax", "ensemble_uniform", "ensemble_rrf")


def matrix_scorer(matrix: torch.Tensor) -> ScoreFn:
    """An evaluator score function that reads precomputed rows."""
    return lambda users, histories: matrix[torch.as_tensor(users, dtype=torch.long)]


def rank_all(
    matrices: Mapping[str, torch.Tensor], data: ProcessedData, split: str
) -> dict[str, RankingResult]:
    """Every score matrix ranked by the course's evaluator on ``split``."""
    return {name: evaluate(matrix_scorer(matrix), data, split) for name, matrix in matrices.items()}


def normalised(
    matrices: Mapping[str, torch.Tensor], data: ProcessedData, split: str
) -> dict[str, torch.Tensor]:
    """Per-user z-scores of each member over the items eligible on ``split``."""
    eligible = eligible_items(data, split)
    return {name: zscore(matrix, eligible) for name, matrix in matrices.items()}


@dataclass
class Fusion:
    """The fitted softmax fusion and the three ensembles' scores on the evaluation split."""

    fit: FusionFit
    scores: dict[str, torch.Tensor]


def fuse(
    valid: Mapping[str, torch.Tensor],
    test: Mapping[str, torch.Tensor],
    data: ProcessedData,
    score_members: list[str],
    rrf_depth: Mapping[str, int],
) -> Fusion:
    """Fit α on ``valid`` (the validation split's matrices) and build the ensembles for ``test``:
    softmax fusion and uniform averaging over ``score_members``; rank fusion over every member
    (those in ``rrf_depth`` only for their top items)."""
    z_valid = normalised({m: valid[m] for m in score_members}, data, "valid")
    targets = torch.from_numpy(data.targets("valid").astype(np.int64))
    fit = fit_softmax_fusion(z_valid, eligible_items(data, "valid"), targets)
    z_test = normalised({m: test[m] for m in score_members}, data, "test")
    scores = {
        "ensemble_softmax": weighted_sum(z_test, fit.alphas),
        "ensemble_uniform": uniform(z_test),
        "ensemble_rrf": reciprocal_rank_fusion(test, eligible_items(data, "test"), depth=rrf_depth),
    }
    return Fusion(fit, scores)


def leave_one_out(
    valid: Mapping[str, torch.Tensor],
    test: Mapping[str, torch.Tensor],
    data: ProcessedData,
    score_members: list[str],
) -> dict[str, dict[str, float]]:
    """For each member: the softmax fusion refitted without it, its validation loss and test NDCG@10."""
    eligible, targets = (
        eligible_items(data, "valid"),
        torch.from_numpy(data.targets("valid").astype(np.int64)),
    )
    z_valid = normalised({m: valid[m] for m in score_members}, data, "valid")
    z_test = normalised({m: test[m] for m in score_members}, data, "test")
    outcome = {}
    for dropped in score_members:
        kept = [m for m in score_members if m != dropped]
        fit = fit_softmax_fusion({m: z_valid[m] for m in kept}, eligible, targets)
        fused = weighted_sum({m: z_test[m] for m in kept}, fit.alphas)
        ranking = evaluate(matrix_scorer(fused), data, "test")
        outcome[dropped] = {"valid_loss": fit.valid_loss, "ndcg@10": float(ranking.ndcg(10).mean())}
    return outcome
