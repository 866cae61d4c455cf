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
class FusionInputs:
    """What every softmax fusion needs, computed once: the score members' z-scores on both splits,
    the validation targets and which items each user may be recommended on each split."""

    z_valid: dict[str, torch.Tensor]
    z_test: dict[str, torch.Tensor]
    eligible_valid: torch.Tensor
    eligible_test: torch.Tensor
    targets_valid: torch.Tensor

    @classmethod
    def of(
        cls,
        valid: Mapping[str, torch.Tensor],
        test: Mapping[str, torch.Tensor],
        data: ProcessedData,
        score_members: list[str],
    ) -> FusionInputs:
        """From the members' raw score matrices on the validation and test splits."""
        return cls(
            z_valid=normalised({m: valid[m] for m in score_members}, data, "valid"),
            z_test=normalised({m: test[m] for m in score_members}, data, "test"),
            eligible_valid=eligible_items(data, "valid"),
            eligible_test=eligible_items(data, "test"),
            targets_valid=torch.from_numpy(data.targets("valid").astype(np.int64)),
        )

    def fit(self, members: list[str]) -> FusionFit:
        """Softmax fusion of ``members`` fitted on the validation split."""
        return fit_softmax_fusion(
            {m: self.z_valid[m] for m in members}, self.eligible_valid, self.targets_valid
        )


@dataclass
class Fusion:
    """The fitted softmax fusion and the three ensembles' scores on the evaluation split."""

    fit: FusionFit
    scores: dict[str, torch.Tensor]


def fuse(inputs: FusionInputs, test: Mapping[str, torch.Tensor], rrf_depth: Mapping[str, int]) -> Fusion:
    """The three ensembles on the test split: softmax fusion (α fitted on validation) and uniform
    averaging of the score members; rank fusion of every member in ``test`` (those in ``rrf_depth``
    only for their top items)."""
    fit = inputs.fit(list(inputs.z_valid))
    scores = {
        "ensemble_softmax": weighted_sum(inputs.z_test, fit.alphas),
        "ensemble_uniform": uniform(inputs.z_test),
        "ensemble_rrf": reciprocal_rank_fusion(test, inputs.eligible_test, depth=rrf_depth),
    }
    return Fusion(fit, scores)


def leave_one_out(inputs: FusionInputs, data: ProcessedData) -> dict[str, dict[str, float]]:
    """For each score member: the softmax fusion refitted without it, its validation loss and test
    NDCG@10."""
    outcome = {}
    for dropped in inputs.z_valid:
        fit = inputs.fit([m for m in inputs.z_valid if m != dropped])
        fused = weighted_sum(inputs.z_test, fit.alphas)
        ranking = evaluate(matrix_scorer(fused), data, "test")
        outcome[dropped] = {"valid_loss": fit.valid_loss, "ndcg@10": float(ranking.ndcg(10).mean())}
    return outcome
