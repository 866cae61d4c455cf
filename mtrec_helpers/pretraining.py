"""Glue for notebook 02: result names of the objectives and the choice of the model to keep."""

from __future__ import annotations

from collections.abc import Mapping

from mtrec_helpers.training import TrainResult

MODEL_NAMES = {"masked": "bert4rec", "causal": "causal"}
"""Result names of the two objectives in metrics.json."""


def best_by_validation(runs: Mapping[str, TrainResult]) -> str:
    """The run with the best validation NDCG@10 (never chosen on test)."""
    return max(runs, key=lambda name: runs[name].best_valid_ndcg)
