"""Members' scores over the whole catalogue, one batch of users at a time, on one scale.

A member is any evaluator score function (:data:`mtrec_helpers.core.evaluation.ScoreFn`).
:func:`score_batches` scores a batch of users with every member at once and hands the batch on, so
nothing of size users × catalogue is ever held (at ML-20M shape one member's matrix for one split
would be ≈ 15 GB). The scales of different models are unrelated (counts, cosine sums, logits), so
before they are combined each user's row is standardised over the items that user can be
recommended (:func:`zscore`): real items outside the user's history, and the held-out item.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from mtrec_helpers.core.evaluation import ScoreFn, history_mask, split_histories
from mtrec_helpers.core.memory import reusing_heap
from mtrec_helpers.data.store import ProcessedData

BATCH_USERS = 256  # the evaluator's batch: the same rows, the same floating-point results
FUSION_ROWS = 64  # fused and ranked this many users at a time: at ML-20M shape a block is 6.8 MB, in cache


@dataclass
class ScoreBatch:
    """One batch of users: their inputs, every member's (B, V) scores and the eligible items."""

    users: np.ndarray
    histories: list[np.ndarray]
    scores: dict[str, torch.Tensor]
    eligible: torch.Tensor

    def blocks(self, rows: int = FUSION_ROWS) -> Iterator[ScoreBatch]:
        """The batch ``rows`` users at a time (views, no copies). Fusion and ranking work row by row,
        so a block gives its rows the same numbers the whole batch does, about twice as fast on a CPU:
        a block's scores stay in cache between the dozens of passes over them."""
        for start in range(0, len(self.users), rows):
            part = slice(start, start + rows)
            yield ScoreBatch(
                self.users[part],
                self.histories[part],
                {name: values[part] for name, values in self.scores.items()},
                self.eligible[part],
            )


def in_blocks(batches: Iterable[ScoreBatch], rows: int = FUSION_ROWS) -> Iterator[ScoreBatch]:
    """Every batch's :meth:`ScoreBatch.blocks`, one after another."""
    return (block for batch in batches for block in batch.blocks(rows))


def score_batches(
    scorers: Mapping[str, ScoreFn],
    data: ProcessedData,
    split: str,
    batch_size: int = BATCH_USERS,
    users: np.ndarray | None = None,
) -> Iterator[ScoreBatch]:
    """Every member's float32 scores on the CPU for one batch of users (default: all, else ``users``,
    in the order given) at a time."""
    histories = split_histories(data, split)
    targets = torch.from_numpy(data.targets(split).astype(np.int64))
    chosen = np.arange(data.n_users) if users is None else np.asarray(users)
    for start in reusing_heap(range(0, len(chosen), batch_size)):
        users = chosen[start : start + batch_size]
        batch = [histories[u] for u in users]
        with torch.no_grad():
            scores = {name: fn(users, batch).float().cpu() for name, fn in scorers.items()}
        for name, values in scores.items():
            low, high = torch.aminmax(values[:, 1:-1])  # NaN in either: not finite
            if not (-torch.inf < low and high < torch.inf):
                raise ValueError(
                    f"member {name!r} returned non-finite scores for real items; fusion needs finite scores"
                )
        n_columns = next(iter(scores.values())).shape[1]
        yield ScoreBatch(users, batch, scores, eligible_rows(batch, targets[users], n_columns))


def eligible_rows(histories: list[np.ndarray], targets: torch.Tensor, n_columns: int) -> torch.Tensor:
    """(B, n_columns) True where an item may be recommended: a real item not in the user's history,
    or the held-out item itself (it always competes, as in the evaluator)."""
    mask = ~history_mask(histories, n_columns, torch.device("cpu"))
    mask[:, [0, -1]] = False  # PAD and MASK
    mask[torch.arange(len(targets)), targets] = True
    return mask


def eligible_items(data: ProcessedData, split: str) -> torch.Tensor:
    """:func:`eligible_rows` for every user of ``split`` (small datasets and tests)."""
    targets = torch.from_numpy(data.targets(split).astype(np.int64))
    return eligible_rows(split_histories(data, split), targets, data.n_items + 2)


def zscore(scores: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
    """Each row minus its mean over eligible items, over their standard deviation; 0 elsewhere
    (``eligible``: a boolean mask, or the same as 0/1 floats, converted once for several members)."""
    weight = eligible if eligible.is_floating_point() else eligible.float()
    count = weight.sum(1, keepdim=True).clamp(min=1.0)
    centred = scores * weight
    mean = centred.sum(1, keepdim=True) / count
    torch.sub(scores, mean, out=centred).mul_(weight)
    square = torch.mul(centred, centred, out=torch.empty_like(centred))
    std = torch.sqrt(square.sum(1, keepdim=True) / count).clamp(min=1e-8)
    return centred.div_(std)
