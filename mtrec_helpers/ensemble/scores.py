"""Each member's scores over the whole catalogue for every user of one split, on one scale.

A member is any evaluator score function (:data:`mtrec_helpers.evaluation.ScoreFn`). Its scores are
computed once per split into a (users, vocabulary) matrix; fusion and evaluation then index rows of
these matrices. The scales of different models are unrelated (counts, cosine sums, logits), so
before they are combined each user's row is standardised over the items that user can be
recommended (:func:`zscore`): real items outside the user's history.
"""

from __future__ import annotations

import numpy as np
import torch

from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.evaluation import ScoreFn, history_mask, split_histories


def score_matrix(score_fn: ScoreFn, data: ProcessedData, split: str, batch_size: int = 256) -> torch.Tensor:
    """A member's float32 scores (users, n_items + 2) on the CPU, users in index order."""
    histories = split_histories(data, split)
    parts = []
    with torch.no_grad():
        for start in range(0, data.n_users, batch_size):
            users = np.arange(start, min(start + batch_size, data.n_users))
            parts.append(score_fn(users, [histories[u] for u in users]).float().cpu())
    scores = torch.cat(parts)
    if not torch.isfinite(scores[:, 1:-1]).all():
        raise ValueError("a member returned non-finite scores for real items; fusion needs finite scores")
    return scores


def eligible_items(data: ProcessedData, split: str) -> torch.Tensor:
    """(users, n_items + 2) True where an item may be recommended on ``split``: a real item not in
    the user's history, or the held-out item itself (it always competes, as in the evaluator)."""
    histories = split_histories(data, split)
    mask = ~history_mask(histories, data.n_items + 2, torch.device("cpu"))
    mask[:, [0, -1]] = False  # PAD and MASK
    targets = torch.from_numpy(data.targets(split).astype(np.int64))
    mask[torch.arange(data.n_users), targets] = True
    return mask


def zscore(scores: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
    """Each row minus its mean over eligible items, over their standard deviation; 0 elsewhere."""
    weight = eligible.float()
    count = weight.sum(1, keepdim=True).clamp(min=1.0)
    mean = (scores * weight).sum(1, keepdim=True) / count
    centred = (scores - mean) * weight
    std = torch.sqrt((centred**2).sum(1, keepdim=True) / count).clamp(min=1e-8)
    return centred / std
