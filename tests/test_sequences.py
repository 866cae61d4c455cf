"""Windows, padding and masking for the Transformers' inputs."""

from __future__ import annotations

import numpy as np
import torch

from mtrec_helpers.pretraining.sequences import (
    IGNORE,
    causal_batch,
    left_pad,
    length_grouped_batches,
    masked_batch,
    windows,
)


def test_left_pad_keeps_the_most_recent_items() -> None:
    padded = left_pad([np.array([1, 2, 3]), np.arange(1, 8), np.array([], dtype=int)], 5)
    assert padded.tolist() == [[0, 0, 1, 2, 3], [3, 4, 5, 6, 7], [0, 0, 0, 0, 0]]


def test_causal_windows_cover_every_transition_once() -> None:
    sequence = np.arange(1, 24)
    cut = windows([sequence], length=6, overlap=1)
    pairs = [(int(w[i]), int(w[i + 1])) for w in cut for i in range(len(w) - 1)]
    assert sorted(pairs) == [(i, i + 1) for i in range(1, 23)]
    inputs, labels = causal_batch(cut)
    assert inputs.shape == labels.shape == (len(cut), 5)
    assert (labels[inputs == 0] == IGNORE).sum() <= (inputs == 0).sum()
    assert ((labels != IGNORE) == (labels > 0)).all()


def test_masked_batch() -> None:
    generator = torch.Generator().manual_seed(0)
    batch = [np.arange(1, 9), np.array([5, 6]), np.arange(10, 30)]
    inputs, labels = masked_batch(batch, mask_id=99, mask_prob=0.3, last_prob=0.0, generator=generator)
    original = left_pad(batch, 20)
    masked = inputs == 99
    assert masked.any(dim=1).all()  # every row predicts something
    assert (labels[masked] == original[masked]).all() and (labels[~masked] == IGNORE).all()
    assert not masked[original == 0].any()  # padding is never masked
    only_last, _ = masked_batch(batch, 99, 0.3, last_prob=1.0, generator=generator)
    assert ((only_last == 99).sum(dim=1) == 1).all() and (only_last[:, -1] == 99).all()


def test_length_grouped_batches_is_a_shuffled_partition() -> None:
    lengths = np.random.default_rng(0).integers(1, 50, size=1000)
    batches = length_grouped_batches(lengths, 32, torch.Generator().manual_seed(0), group=4)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.5 * np.ptp(lengths)  # batches hold similar lengths
    again = length_grouped_batches(lengths, 32, torch.Generator().manual_seed(0), group=4)
    assert batches == again
