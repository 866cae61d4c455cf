"""Full-softmax cross-entropy over a large catalogue without holding the (positions × catalogue) logits.

The next-item loss of every stage is a softmax over the whole catalogue at N labelled positions:

    L = (1/N) Σ_n [ logsumexp_v s_n,v − s_n,y_n ],   s_n = scores(h_n)  (one row of V logits)

At ML-20M's shape a batch of 128 × 200 positions over 26,744 items is 2.7 GB of fp32 logits before
the backward pass stores its own copy. :func:`chunked_cross_entropy` computes the same sum a chunk
of rows at a time (at most ``budget`` logits per chunk) and wraps each chunk in activation
checkpointing, so the backward pass recomputes that chunk's logits instead of keeping them: memory
is one chunk, the loss and gradients are the full softmax's (up to float summation order). When
all rows fit in one chunk it is exactly ``F.cross_entropy`` on the full matrix.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

LOGIT_BUDGET = 2**26
"""Logits in one chunk (256 MB in fp32): ML-100k's batches always fit in one; ML-20M's take ~2,500 rows."""

Scores = Callable[[slice], torch.Tensor]
"""The (rows, V) logits of a slice of the labelled positions."""


def _summed(scores: Scores, part: slice, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(scores(part).float(), targets, reduction="sum")


def chunked_cross_entropy(
    scores: Scores, targets: torch.Tensor, n_classes: int, budget: int | None = None
) -> torch.Tensor:
    """Mean cross-entropy of ``scores(rows)`` against ``targets`` (N,), at most ``budget`` logits
    (default :data:`LOGIT_BUDGET`; ``budget // n_classes`` rows) alive at a time, forward and backward."""
    rows = max(1, (budget or LOGIT_BUDGET) // n_classes)
    if len(targets) <= rows:
        return F.cross_entropy(scores(slice(None)).float(), targets)
    total = torch.zeros((), device=targets.device)
    for start in range(0, len(targets), rows):
        part = slice(start, start + rows)
        total = total + checkpoint(_summed, scores, part, targets[part], use_reentrant=False)
    return total / len(targets)
