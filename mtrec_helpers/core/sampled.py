"""Sampled softmax with the logQ correction: next-item training when the full softmax is too slow.

Instead of all V items, each batch draws K negatives S from a proposal q (training popularity,
add-one smoothed) shared by every labelled position, and every logit is corrected by −log q:

    L = (1/N) Σ_n [ log( e^{s_n,y − log q_y} + Σ_{j ∈ S, j ≠ y_n} e^{s_n,j − log q_j} ) − (s_n,y − log q_y) ]

Without the correction the popular items, drawn most often, are pushed down far more than the
full softmax would push them; with it the sampled loss estimates the full one (Bengio & Senécal
2008; Yi et al. 2019 in recommendation; gSASRec and RECE study the same bias in SASRec). A negative
equal to a position's own target is masked. Only training changes: evaluation stays full ranking.
With every item as a negative and a uniform q it is exactly the full cross-entropy (tested).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def popularity_proposal(targets: np.ndarray, vocab_size: int) -> torch.Tensor:
    """log q over the vocabulary: training-target counts + 1 on real items, PAD and MASK never drawn."""
    counts = np.bincount(targets, minlength=vocab_size).astype(np.float64) + 1.0
    counts[[0, -1]] = 0.0
    with np.errstate(divide="ignore"):  # log 0 = −inf: PAD and MASK have no probability
        return torch.from_numpy(np.log(counts / counts.sum())).float()


def draw_negatives(log_q: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """K item indices drawn with replacement from q."""
    return torch.multinomial(log_q.exp(), k, replacement=True, generator=generator)


def sampled_cross_entropy(
    positive: torch.Tensor,
    negative: torch.Tensor,
    targets: torch.Tensor,
    negatives: torch.Tensor,
    log_q: torch.Tensor,
) -> torch.Tensor:
    """Mean corrected sampled-softmax loss from the targets' logits (N,) and the negatives' (N, K)."""
    logits = torch.cat([(positive - log_q[targets])[:, None], negative - log_q[negatives][None, :]], 1)
    hit = torch.cat(
        [torch.zeros_like(targets[:, None], dtype=torch.bool), negatives[None, :] == targets[:, None]], 1
    )
    logits = logits.float().masked_fill(hit, -torch.inf)
    return F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long, device=logits.device))
