"""Chunked full-softmax cross-entropy: the same loss and gradients as the full one, in bounded memory."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mtrec_helpers.core import chunked
from mtrec_helpers.core.chunked import chunked_cross_entropy
from mtrec_helpers.pretraining.models import SeqRecModel, build_config


def _problem(
    n: int = 53, hidden: int = 8, vocab: int = 37
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    states = torch.randn(n, hidden, generator=generator, requires_grad=True)
    weight = torch.randn(vocab, hidden, generator=generator, requires_grad=True)
    targets = torch.randint(0, vocab, (n,), generator=generator)
    return states, weight, targets


@pytest.mark.parametrize("budget", [37, 37 * 5, 37 * 52, 10**9])  # 1 row, 5 rows, 52 rows, one chunk
def test_chunked_loss_and_gradients_equal_the_full_softmax(budget: int) -> None:
    states, weight, targets = _problem()
    full = F.cross_entropy(states @ weight.T, targets)
    full_grads = torch.autograd.grad(full, (states, weight))
    chunks = chunked_cross_entropy(lambda part: states[part] @ weight.T, targets, 37, budget)
    chunk_grads = torch.autograd.grad(chunks, (states, weight))
    torch.testing.assert_close(chunks, full, rtol=1e-6, atol=0)
    for got, expected in zip(chunk_grads, full_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    if budget == 10**9:  # one chunk: exactly the full computation
        assert torch.equal(chunks, full)


def test_no_chunk_holds_more_logits_than_the_budget() -> None:
    states, weight, targets = _problem(n=100, vocab=50)
    widest: list[int] = []

    def scores(part: slice) -> torch.Tensor:
        logits = states[part] @ weight.T
        widest.append(logits.numel())
        return logits

    chunked_cross_entropy(scores, targets, 50, budget=50 * 16).backward()
    assert max(widest) == 50 * 16 and len(widest) == 2 * 7  # 7 chunks, each recomputed in backward


def test_model_loss_is_the_same_when_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage 02's loss (seen-item bias on) over a catalogue split into 3-row chunks equals the
    one-chunk loss, gradients included."""
    torch.manual_seed(0)
    config = build_config(60, "causal", hidden=16, layers=1, heads=2, max_len=12, dropout=0.0, seen_bias=True)
    model = SeqRecModel(config)
    inputs = torch.randint(1, 61, (4, 12))
    labels = torch.randint(1, 61, (4, 12))
    labels[0, :5] = -100

    def loss_and_grads() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        loss = model.loss(inputs, labels)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    whole, whole_grads = loss_and_grads()
    monkeypatch.setattr(chunked, "LOGIT_BUDGET", 3 * config.vocab_size)
    parts, parts_grads = loss_and_grads()
    torch.testing.assert_close(parts, whole, rtol=1e-6, atol=0)
    for got, expected in zip(parts_grads, whole_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
