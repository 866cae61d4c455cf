"""The top-K off-policy correction: its estimator against the exact gradient, and learning from logs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_rl_env import world  # noqa: F401  (shared fixture)
from test_rl_policies import _beats_greedy, _planted

from mtrec_helpers.rl.agents import Greedy, LearnedAgent, ReinforceConfig
from mtrec_helpers.rl.offpolicy import (
    OffPolicyConfig,
    log_sessions,
    off_policy_loss,
    top_k_multiplier,
    train_from_logs,
)

REWARD = torch.tensor([1.0, 0.2, 0.0, 0.6, 0.3, 0.9])
THETA = torch.tensor([0.5, 1.5, 0.0, -0.5, 1.0, -1.0])  # the policy's logits
BETA = torch.softmax(torch.tensor([0.0, 2.0, 1.0, 0.0, 1.0, -2.0]), 0)  # the logging policy


def _sampled_gradient(correction: str, k: int, n: int = 400_000) -> torch.Tensor:
    """∇θ of the off-policy loss over n actions logged by β, with advantage = the action's reward."""
    generator = torch.Generator().manual_seed(0)
    actions = torch.multinomial(BETA, n, replacement=True, generator=generator)
    theta = THETA.clone().requires_grad_(True)
    loss = off_policy_loss(
        theta.expand(n, -1), actions, BETA[actions], REWARD[actions], k, correction, cap=1e6
    )
    loss.backward()
    return theta.grad


def _exact_gradient(objective) -> torch.Tensor:
    theta = THETA.clone().requires_grad_(True)
    (-objective(torch.softmax(theta, 0))).backward()
    return theta.grad


def test_top_k_multiplier_is_the_derivative_of_the_slate_probability() -> None:
    pi = torch.tensor([0.05, 0.3, 0.7], requires_grad=True)
    (1 - (1 - pi) ** 4).sum().backward()
    torch.testing.assert_close(top_k_multiplier(pi.detach(), 4), pi.grad)
    assert (top_k_multiplier(pi.detach(), 1) == 1).all()


def test_importance_weighted_gradient_is_the_on_policy_gradient() -> None:
    exact = _exact_gradient(lambda pi: (pi * REWARD).sum())  # ∇ E_π[r]
    torch.testing.assert_close(_sampled_gradient("is", k=1), exact, atol=4e-3, rtol=0)
    uncorrected = _sampled_gradient("none", k=1)
    assert (uncorrected - exact).abs().max() > 0.05  # logs of another policy bias plain REINFORCE


def test_top_k_corrected_gradient_is_the_gradient_of_the_slate_objective() -> None:
    k = 3
    exact = _exact_gradient(lambda pi: (REWARD * (1 - (1 - pi) ** k)).sum())  # ∇ Σ_a r(a) α_K(a)
    torch.testing.assert_close(_sampled_gradient("topk", k=k), exact, atol=1e-2, rtol=0)
    assert (_sampled_gradient("is", k=k) - exact).abs().max() > 0.05


def test_weights_are_capped() -> None:
    logits = torch.tensor([[5.0, 0.0]], requires_grad=True)
    off_policy_loss(
        logits, torch.tensor([0]), torch.tensor([0.01]), torch.tensor([1.0]), 1, "is", cap=2.0
    ).backward()
    pi = torch.softmax(logits.detach(), 1)[0, 0]
    torch.testing.assert_close(logits.grad[0, 0], -2.0 * (1 - pi))  # weight 2, not π/β ≈ 99


def test_bad_correction_is_refused() -> None:
    with pytest.raises(ValueError, match="correction"):
        OffPolicyConfig(correction="doubly-robust")


def test_logs_hold_clicked_steps_with_their_behaviour_probabilities(world) -> None:  # noqa: F811
    table, new_sessions, genres, _, n_users = _planted(world)
    config = OffPolicyConfig(log_repeats=2)
    logs = log_sessions(new_sessions, table, genres, np.arange(n_users), 3, 0.9, config)
    assert len(logs.session_returns) == 2 * n_users and len(logs) > n_users
    assert logs.available[torch.arange(len(logs)), logs.action].all()
    assert ((logs.behaviour > 0) & (logs.behaviour <= 1)).all()
    assert (logs.returns >= 0).all() and float(logs.returns.mean()) > 0
    # a session's first click's discounted return ≤ the session's undiscounted return (rewards ≥ 0)
    assert float(logs.returns.max()) <= float(logs.session_returns.max()) + 1e-5


def test_off_policy_reinforce_learns_from_greedy_logs_to_beat_greedy(world) -> None:  # noqa: F811
    table, new_sessions, genres, share, n_users = _planted(world)
    config = OffPolicyConfig(log_repeats=3, epochs=40, minibatch=256)
    logs = log_sessions(new_sessions, table, genres, np.arange(n_users), 3, 0.9, config)
    network, curve = train_from_logs(logs, 3, ReinforceConfig(lr=1e-2), config)
    assert len(curve) == 40
    record = _beats_greedy(LearnedAgent(3, network, table, genres), new_sessions, genres, share, n_users)
    assert record["diff_vs_greedy_ci"][0] > 0, record


def test_many_sessions_run_in_bounded_groups(world, monkeypatch) -> None:  # noqa: F811
    """Logging or evaluating 100,000 users' sessions at once would hold 3 × sessions × catalogue
    floats (33 GB at ML-20M's shape): beyond SESSION_BATCH they run in groups, each its own seed."""
    from mtrec_helpers.rl import env, experiments, offpolicy

    (whole, seed), *rest = env.session_groups(np.arange(10), 7)
    assert np.array_equal(whole, np.arange(10)) and seed == 7 and not rest  # small: one batch, as before
    groups = env.session_groups(np.arange(10), 7, size=4)
    assert [len(g) for g, _ in groups] == [4, 3, 3] and [s for _, s in groups] == [7, 8, 9]
    assert np.array_equal(np.concatenate([g for g, _ in groups]), np.arange(10))
    table, new_sessions, genres, _, n_users = _planted(world)
    sizes: list[int] = []

    def counted(users: np.ndarray, seed: int):
        sizes.append(len(users))
        return new_sessions(users, seed)

    monkeypatch.setattr(offpolicy, "session_groups", lambda u, s: env.session_groups(u, s, size=16))
    logs = log_sessions(counted, table, genres, np.arange(n_users), 3, 0.9, OffPolicyConfig(log_repeats=2))
    assert max(sizes) <= 16 and sum(sizes) == len(logs.session_returns) == 2 * n_users
    assert logs.available[torch.arange(len(logs)), logs.action].all()
    sizes.clear()
    monkeypatch.setattr(experiments, "session_groups", lambda u, s: env.session_groups(u, s, size=16))
    world_stub = type("W", (), {"genres": genres, "popularity": torch.full((genres.shape[0],), 0.01)})()
    records, stats = experiments.evaluate_agents(
        {"greedy": Greedy(3)}, counted, world_stub, np.arange(n_users), 0, n_boot=50
    )
    assert max(sizes) <= 16 and len(stats["greedy"].returns) == n_users
