"""Stage 02 (notebook 02): Transformer pretraining and the baselines it is judged against.

- ``models`` — SeqRecModel (BERT4Rec-style masked or SASRec-style causal) on a transformers BERT config;
- ``sequences`` — training windows, padding, masking, length-grouped batches;
- ``train`` — the two objectives on the shared engine (:mod:`mtrec_helpers.core.engine`), resumable;
- ``baselines`` — most-popular, item-kNN and EASE, tuned on validation;
- ``python -m mtrec_helpers.pretraining`` — the training part of notebook 02 as a command, for
  ``accelerate launch`` / ``torchrun`` on several processes; it writes the runs the notebook reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mtrec_helpers.pretraining.train import TrainResult

MODEL_NAMES = {"masked": "bert4rec", "causal": "causal"}
"""Result names of the two objectives in metrics.json."""


def best_by_validation(runs: Mapping[str, TrainResult]) -> str:
    """The run with the best validation NDCG@10 (never chosen on test)."""
    return max(runs, key=lambda name: runs[name].best_valid_ndcg)
