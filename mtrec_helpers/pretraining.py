"""Glue for notebook 02: model names, scorers and the choice of the pretrained model to keep."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from mtrec_helpers.device import autocast
from mtrec_helpers.evaluation import ScoreFn
from mtrec_helpers.models import SeqRecModel, catalogue_scores
from mtrec_helpers.training import TrainResult

MODEL_NAMES = {"masked": "bert4rec", "causal": "causal"}
"""Result names of the two objectives in metrics.json."""


def scorer(model: SeqRecModel) -> ScoreFn:
    """A score function (users, histories) → catalogue scores, in eval mode without gradients."""
    model.eval()

    def score(users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        with torch.no_grad(), autocast(model.device):
            return catalogue_scores(model, histories).float()

    return score


def best_by_validation(runs: Mapping[str, TrainResult]) -> str:
    """The run with the best validation NDCG@10 (never chosen on test)."""
    return max(runs, key=lambda name: runs[name].best_valid_ndcg)
