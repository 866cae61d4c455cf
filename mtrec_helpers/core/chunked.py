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


def chunked_mean(
    terms: Callable[[slice], torch.Tensor], n_rows: int, n_classes: int, budget: int | None = None
) -> torch.Tensor:
    """The mean over ``n_rows`` rows of ``terms(part)`` — the per-row means (a scalar or a vector
    of loss terms) of one slice of rows, each computing at most (rows × ``n_classes``) logits —
    at most ``budget`` logits (default :data:`LOGIT_BUDGET`) alive at a time, forward and backward.
    One chunk is ``terms(slice(None))`` itself; several are weighted by their sizes."""
    rows = max(1, (budget or LOGIT_BUDGET) // n_classes)
    if n_rows <= rows:
        return terms(slice(None))
    total = torch.zeros(())
    for start in range(0, n_rows, rows):
        part = slice(start, min(start + rows, n_rows))
        chunk = checkpoint(terms, part, use_reentrant=False)
        total = total.to(chunk.device) + chunk * (part.stop - part.start)
    return total / n_rows


def chunked_cross_entropy(
    scores: Scores, targets: torch.Tensor, n_classes: int, budget: int | None = None
) -> torch.Tensor:
    """Mean cross-entropy of ``scores(rows)`` against ``targets`` (N,), computed by :func:`chunked_mean`."""
    return chunked_mean(
        lambda part: F.cross_entropy(scores(part).float(), targets[part]), len(targets), n_classes, budget
    )
