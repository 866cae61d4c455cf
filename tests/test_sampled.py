"""Sampled softmax with the logQ correction: exact against the full softmax where it must be, and
drawing its negatives from the proposal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtrec_helpers.core.sampled import draw_negatives, popularity_proposal
from mtrec_helpers.pretraining.models import SeqRecModel, build_config
from mtrec_helpers.pretraining.sequences import causal_batch


@pytest.mark.parametrize("seen_bias", [False, True])
def test_every_item_as_negative_with_a_uniform_proposal_is_the_full_softmax(seen_bias: bool) -> None:
    torch.manual_seed(0)
    model = SeqRecModel(build_config(40, "causal", hidden=16, layers=1, heads=2, max_len=12, dropout=0.0,
                                      seen_bias=seen_bias))  # fmt: skip
    if seen_bias:
        torch.nn.init.constant_(model.seen_weight, -0.7)
    rng = np.random.default_rng(0)
    inputs, labels = causal_batch([rng.integers(1, 41, size=n) for n in (12, 7, 9, 12)])
    vocab = model.config.vocab_size
    uniform = torch.full((vocab,), -math.log(vocab))
    full = model.loss(inputs, labels)
    sampled = model.sampled_loss(inputs, labels, torch.arange(vocab), uniform)
    assert sampled.item() == pytest.approx(full.item(), rel=1e-5)
    # a repeated negative counts twice, as a sample of the sum should: the loss can only grow
    doubled = model.sampled_loss(
        inputs, labels, torch.cat([torch.arange(vocab), torch.arange(1, 6)]), uniform
    )
    assert doubled.item() > full.item()


def test_negatives_follow_training_popularity_and_never_pad_or_mask() -> None:
    targets = np.array([1] * 80 + [2] * 15 + [3] * 5)
    log_q = popularity_proposal(targets, 5)  # PAD 0, items 1..3, MASK 4
    assert torch.isinf(log_q[[0, 4]]).all() and torch.allclose(
        log_q[1:4].exp(), torch.tensor([81, 16, 6]) / 103.0
    )
    drawn = draw_negatives(log_q, 20_000, torch.Generator().manual_seed(0))
    share = torch.bincount(drawn, minlength=5).float() / len(drawn)
    assert share[0] == 0 and share[4] == 0
    assert share[1] == pytest.approx(81 / 103, abs=0.01) and share[3] == pytest.approx(6 / 103, abs=0.01)
