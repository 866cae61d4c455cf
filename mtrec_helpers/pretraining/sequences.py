"""Turn item sequences into model inputs: left-padded windows, causal targets, random masks.

Sequences are right-aligned (left-padded with PAD = 0) so the most recent item always sits in the
last position, as in SASRec and BERT4Rec.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

IGNORE = -100  # label value that cross-entropy skips


def left_pad(sequences: Sequence[np.ndarray], length: int) -> torch.Tensor:
    """The last ``length`` items of each sequence, left-padded with 0, shape (B, length)."""
    batch = np.zeros((len(sequences), length), dtype=np.int64)
    for row, items in enumerate(sequences):
        tail = items[-length:]
        if len(tail):
            batch[row, length - len(tail) :] = tail
    return torch.from_numpy(batch)


def windows(sequences: Sequence[np.ndarray], length: int, overlap: int) -> list[np.ndarray]:
    """Cut each sequence from its end into windows of ``length`` items sharing ``overlap`` items.

    With ``overlap=1`` every consecutive pair (a transition) falls in exactly one window.
    """
    step = length - overlap
    cut: list[np.ndarray] = []
    for items in sequences:
        end = len(items)
        while True:
            cut.append(items[max(0, end - length) : end])
            if end - length <= 0:
                break
            end -= step
    return [w for w in cut if len(w) > overlap]


def longest(window_batch: Sequence[np.ndarray]) -> int:
    """Length of the longest window in a batch (batches are padded only that far)."""
    return max(len(w) for w in window_batch)


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, generator: torch.Generator, group: int = 16
) -> list[list[int]]:
    """Shuffled batches of indices whose lengths are similar, so little of each batch is padding.

    Indices are shuffled, cut into groups of ``group`` batches, sorted by length within a group,
    split into batches, and the batches shuffled again.
    """
    order = torch.randperm(len(lengths), generator=generator).numpy()
    batches: list[list[int]] = []
    span = batch_size * group
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size].tolist() for i in range(0, len(chunk), batch_size))
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]


def causal_batch(window_batch: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (items 0..n-2) and next-item labels (items 1..n-1) of a batch of windows."""
    padded = left_pad(window_batch, longest(window_batch))
    inputs, labels = padded[:, :-1], padded[:, 1:].clone()
    labels[labels == 0] = IGNORE
    return inputs, labels


def masked_batch(
    window_batch: Sequence[np.ndarray],
    mask_id: int,
    mask_prob: float,
    last_prob: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT4Rec inputs: each item replaced by [MASK] with ``mask_prob`` (at least one per row);
    with ``last_prob`` a row masks only its last item, the case next-item prediction faces."""
    items = left_pad(window_batch, longest(window_batch))
    real = items != 0
    draw = torch.rand(items.shape, generator=generator) < mask_prob
    only_last = torch.rand(len(items), generator=generator) < last_prob
    draw[only_last] = False
    draw[:, -1] |= only_last | ~(draw & real).any(dim=1)
    masked = draw & real
    labels = torch.where(masked, items, torch.full_like(items, IGNORE))
    inputs = torch.where(masked, torch.full_like(items, mask_id), items)
    return inputs, labels


def next_item_inputs(sequences: Sequence[np.ndarray], max_len: int, mask_id: int | None) -> torch.Tensor:
    """Inputs whose last position predicts the next item: the history itself (causal) or the
    history followed by [MASK] (masked, when ``mask_id`` is given)."""
    if mask_id is None:
        return left_pad(sequences, max_len)
    appended = [np.append(items[-(max_len - 1) :], mask_id) for items in sequences]
    return left_pad(appended, max_len)
