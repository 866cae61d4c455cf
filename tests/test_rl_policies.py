"""Exploration strategies, session metrics and the paired comparison of policies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_rl_env import SimulatorConfig, _sessions, world  # noqa: F401  (shared fixture)

from mtrec_helpers.rl.agents import (
    Greedy,
    LearnedAgent,
    Random,
    Reinforce,
    ReinforceConfig,
    discounted_returns,
    plackett_luce_log_prob,
    train_reinforce,
)
from mtrec_helpers.rl.env import Sessions
from mtrec_helpers.rl.exploration import boltzmann, decayed, epsilon_greedy, top_k, ucb
from mtrec_helpers.rl.metrics import compare, intra_slate_diversity, simulate
from mtrec_helpers.rl.retrieval import CandidateTable
from mtrec_helpers.rl.slateq import SlateQ, SlateQAgent, SlateQConfig, train_slateq
from mtrec_helpers.rl.user_model import RatingModel, UserModel


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
        "greedy": simulate(Greedy(4), _sessions(world, config, users, 1), genres, popularity),
        "random": simulate(Random(4, generator), _sessions(world, config, users, 1), genres, popularity),
    }
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


def test_plackett_luce_probabilities_sum_to_one_over_ordered_slates() -> None:
    import itertools

    logits = torch.tensor([[0.3, -1.0, 2.0, 0.5]])
    slates = torch.tensor(list(itertools.permutations(range(4), 2)))
    log_probs = plackett_luce_log_prob(logits.expand(len(slates), -1), slates)
    assert log_probs.exp().sum().item() == pytest.approx(1.0, abs=1e-6)
    first = torch.softmax(logits, 1)[0]
    expected = first[2] * torch.softmax(logits[0, [0, 1, 3]], 0)[0]  # slate (2, 0)
    assert log_probs[slates.tolist().index([2, 0])].exp().item() == pytest.approx(expected.item())


def test_discounted_returns_by_hand() -> None:
    rewards = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    still = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])  # session 2 ended after step 2
    returns = discounted_returns(rewards, still, gamma=0.5)
    assert returns[:, 0].tolist() == [1.0 + 0.5 * 0.0 + 0.25 * 3.0, 0.0 + 0.5 * 3.0, 3.0]
    assert returns[:, 1].tolist() == [0.0 + 0.5 * 2.0, 2.0, 0.0]


def _planted(world):  # noqa: F811
    """Candidates ranked by popularity (what greedy follows); satisfaction is a planted item
    quality unrelated to popularity, and the 'like' feature shows it."""
    data, fitted, histories, genres = world
    generator = torch.Generator().manual_seed(0)
    vocabulary = data.n_items + 2
    quality = RatingModel(3.0, torch.zeros(data.n_users), 1.5 * torch.randn(vocabulary, generator=generator),
                          torch.zeros(data.n_users, 1), torch.zeros(vocabulary, 1))  # fmt: skip
    model = UserModel(fitted.ease, quality, (1.0, 5.0))
    n_users, n = data.n_users, 20
    popularity = histories.float().sum(0)
    scores = popularity.expand(n_users, -1).masked_fill(histories > 0, -torch.inf).clone()
    scores[:, [0, -1]] = -torch.inf
    top = torch.topk(scores, n, dim=1)
    users = torch.arange(n_users)[:, None].expand(-1, n)
    table = CandidateTable(
        top.indices, top.values, model.satisfaction(users, top.indices), torch.zeros(n_users, n)
    )
    config = SimulatorConfig(n_candidates=n, slate_size=3, horizon=10)

    def new_sessions(chosen, seed: int) -> Sessions:
        chosen = torch.as_tensor(chosen)
        return Sessions(
            model,
            config,
            genres,
            chosen,
            histories[chosen],
            table.lookup,
            torch.Generator().manual_seed(seed),
        )

    return table, new_sessions, genres, popularity / popularity.sum(), n_users


def _beats_greedy(agent, new_sessions, genres, share, n_users) -> dict:
    everyone = np.tile(np.arange(n_users), 3)
    greedy = simulate(Greedy(3), new_sessions(everyone, 7), genres, share)
    learned = simulate(agent, new_sessions(everyone, 7), genres, share)
    return compare({"greedy": greedy, "learned": learned}, n_boot=300)["learned"]


def test_reinforce_learns_to_use_a_feature_greedy_ignores(world) -> None:  # noqa: F811
    table, new_sessions, genres, share, n_users = _planted(world)
    network = Reinforce(ReinforceConfig(iterations=40, batch_users=64, lr=1e-2))
    curve = train_reinforce(network, new_sessions, table, genres, np.arange(n_users), 3)
    assert len(curve) == 40
    record = _beats_greedy(LearnedAgent(3, network, table, genres), new_sessions, genres, share, n_users)
    assert record["diff_vs_greedy_ci"][0] > 0, record


def test_slateq_learns_to_use_a_feature_greedy_ignores(world) -> None:  # noqa: F811
    table, new_sessions, genres, share, n_users = _planted(world)
    agent = SlateQAgent(
        3, SlateQ(SlateQConfig(iterations=15, batch_users=64, minibatch=128, lr=1e-2)), table, genres
    )
    curve = train_slateq(agent, new_sessions, np.arange(n_users))
    assert len(curve) == 15 and curve[0]["epsilon"] == 0.5 and agent.epsilon == 0.0
    record = _beats_greedy(agent, new_sessions, genres, share, n_users)
    assert record["diff_vs_greedy_ci"][0] > 0, record


def test_slate_value_is_the_choice_weighted_item_value() -> None:
    network = SlateQ(SlateQConfig(hidden=4))
    features = torch.randn(2, 6, 5)
    available = torch.ones(2, 6, dtype=torch.bool)
    value = network.slate_value(features, available, k=3)
    scores = network.slate_scores(features, available, target=True)
    slate = torch.topk(scores, 3, dim=1).indices
    v = torch.exp(network.choice(features).squeeze(-1)).gather(1, slate)
    q = network.target(features).squeeze(-1).gather(1, slate)
    expected = (v * q).sum(1) / (torch.exp(network.no_click) + v.sum(1))
    torch.testing.assert_close(value, expected)
