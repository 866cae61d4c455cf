"""Turning per-candidate scores (B, N) into slates (B, K) of candidate positions, with exploration.

Every learner scores the N candidates of each user; one of these turns scores into a slate:

- :func:`top_k` — exploit: the K best;
- :func:`epsilon_greedy` — each slate position is, with probability ε, a random candidate not yet
  in the slate (ε decays with :func:`decayed`);
- :func:`boltzmann` — K draws without replacement from softmax(scores / T) (Plackett–Luce, by the
  Gumbel-top-k trick);
- :func:`ucb` — optimism: scores + c·sqrt(log t / (1 + n_i)), n_i = how often item i was shown.
"""

from __future__ import annotations

import math

import torch


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Positions of the k highest scores per row."""
    return torch.topk(scores, k, dim=1).indices


def decayed(start: float, end: float, step: int, steps: int) -> float:
    """Linear decay from ``start`` to ``end`` over ``steps`` steps, then ``end``."""
    return end + (start - end) * max(0.0, 1.0 - step / max(steps, 1))


def epsilon_greedy(scores: torch.Tensor, k: int, epsilon: float, generator: torch.Generator) -> torch.Tensor:
    """The top-k, each position replaced with probability ε by a random candidate outside it."""
    if scores.shape[1] < 2 * k:
        raise ValueError(f"ε-greedy needs at least 2·K = {2 * k} candidates, got {scores.shape[1]}")
    greedy = top_k(scores, k)
    keys = torch.rand(scores.shape, generator=generator).scatter_(1, greedy, -1.0)
    others = top_k(keys, k)  # k random candidates that are not in the greedy slate
    explore = torch.rand(greedy.shape, generator=generator) < epsilon
    return torch.where(explore, others, greedy)


def boltzmann(scores: torch.Tensor, k: int, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """k positions drawn without replacement with probabilities ∝ exp(score / T)."""
    uniform = torch.rand(scores.shape, generator=generator).clamp(1e-9, 1 - 1e-9)
    return top_k(scores / temperature - torch.log(-torch.log(uniform)), k)


def ucb(scores: torch.Tensor, k: int, shown: torch.Tensor, step: int, bonus: float) -> torch.Tensor:
    """Top-k of scores plus an optimism bonus for rarely shown candidates (``shown``: (B, N) counts)."""
    return top_k(scores + bonus * torch.sqrt(math.log(step + 2) / (1.0 + shown)), k)
