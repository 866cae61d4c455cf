"""Exploration strategies, session metrics and the paired comparison of policies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_rl_env import SimulatorConfig, _sessions, world  # noqa: F401  (shared fixture)

from mtrec_helpers.rl.exploration import boltzmann, decayed, epsilon_greedy, top_k, ucb
from mtrec_helpers.rl.metrics import compare, intra_slate_diversity, simulate


def test_top_k_and_decay() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7]])
    assert top_k(scores, 2).tolist() == [[1, 3]]
    assert decayed(1.0, 0.1, 0, 10) == 1.0 and decayed(1.0, 0.1, 5, 10) == pytest.approx(0.55)
    assert decayed(1.0, 0.1, 50, 10) == 0.1


def test_epsilon_greedy_explores_at_rate_epsilon_without_duplicates() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.arange(20, dtype=torch.float32).expand(2000, -1)
    slates = epsilon_greedy(scores, 4, 0.25, generator)
    greedy = set(range(16, 20))
    outside = np.mean([[int(p) not in greedy for p in row] for row in slates.tolist()])
    assert outside == pytest.approx(0.25, abs=0.02)
    assert all(len(set(row)) == 4 for row in slates.tolist())
    assert (epsilon_greedy(scores[:5], 4, 0.0, generator) == top_k(scores[:5], 4)).all()
    with pytest.raises(ValueError, match="at least 2·K"):
        epsilon_greedy(scores[:, :6], 4, 0.1, generator)


def test_boltzmann_follows_the_softmax() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.log(torch.tensor([[0.6, 0.3, 0.1]])).expand(20000, -1)
    first = boltzmann(scores, 1, 1.0, generator)[:, 0]
    shares = torch.bincount(first, minlength=3).float() / len(first)
    torch.testing.assert_close(shares, torch.tensor([0.6, 0.3, 0.1]), atol=0.015, rtol=0)
    cold = boltzmann(scores[:100], 2, 1e-3, generator)  # T → 0: the top-k
    assert (cold == torch.tensor([0, 1])).all()


def test_ucb_prefers_rarely_shown_candidates() -> None:
    scores = torch.tensor([[1.0, 0.9, 0.0]])
    assert ucb(scores, 1, torch.tensor([[100.0, 0.0, 0.0]]), step=10, bonus=1.0).tolist() == [[1]]
    assert ucb(scores, 1, torch.zeros(1, 3), step=10, bonus=0.0).tolist() == [[0]]


def test_intra_slate_diversity_by_hand() -> None:
    genres = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert intra_slate_diversity(genres, torch.tensor([[0, 1]])).item() == pytest.approx(0.0)
    assert intra_slate_diversity(genres, torch.tensor([[0, 2]])).item() == pytest.approx(1.0)
    assert intra_slate_diversity(genres, torch.tensor([[0, 1, 2]])).item() == pytest.approx(2 / 3)


def test_policies_are_compared_paired_on_the_same_sessions(world) -> None:  # noqa: F811
    data, _, histories, genres = world
    popularity = histories.float().sum(0) / histories.sum()
    users = np.arange(data.n_users)
    config = SimulatorConfig(n_candidates=20, slate_size=4)
    generator = torch.Generator().manual_seed(5)
    runs = {
        "greedy": simulate(
            lambda s, t: top_k(s.candidate_scores, 4), _sessions(world, config, users, 1), genres, popularity
        ),
        "random": simulate(
            lambda s, t: top_k(torch.rand(s.candidates.shape, generator=generator), 4),
            _sessions(world, config, users, 1), genres, popularity,
        ),
    }  # fmt: skip
    records = compare(runs, n_boot=500)
    assert records["greedy"]["n_sessions"] == data.n_users and "diff_vs_greedy" not in records["greedy"]
    low, high = records["random"]["diff_vs_greedy_ci"]
    assert low <= records["random"]["diff_vs_greedy"] <= high
    assert records["random"]["diff_vs_greedy"] == pytest.approx(
        records["random"]["return_mean"] - records["greedy"]["return_mean"], abs=1e-6
    )
    assert 1 <= records["greedy"]["length_mean"] <= config.horizon
    assert records["greedy"]["clicks_mean"] <= records["greedy"]["length_mean"]
    assert 0 <= records["greedy"]["diversity_mean"] <= 1 and records["greedy"]["novelty_mean"] > 0
