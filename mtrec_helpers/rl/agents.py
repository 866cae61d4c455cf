"""Agents that build slates from the finetuned model's candidates.

Every agent sees, per candidate, only what the recommender itself knows (:func:`candidate_features`):
the retrieval score, the multi-task heads' like probability and rating, how much the candidate's
genres overlap with what the user clicked recently in this session (the agent's own record of the
clicks it saw), and how far the session has gone. Never the simulator's user model.

- :class:`Greedy` — the K best retrieval scores (the finetuned model's ranking);
- :class:`ByFeature` — a myopic re-ranker by one feature (e.g. predicted like probability);
- :class:`Random` — K random available candidates;
- :class:`Reinforce` — a policy network scoring candidates, slates drawn by Plackett–Luce
  (Boltzmann exploration), trained by REINFORCE with a learned state-value baseline and discount γ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mtrec_helpers.rl.env import Sessions
from mtrec_helpers.rl.exploration import boltzmann, top_k
from mtrec_helpers.rl.retrieval import CandidateTable
from mtrec_helpers.rl.user_model import standardise

FEATURES = ("score", "like", "rating", "recent_overlap", "progress")
RECENT_DECAY = 0.5  # the agent's own memory of recently clicked genres


class SessionObserver:
    """The agent-side record of a batch of sessions: the genres of recent clicks."""

    def __init__(self, n_users: int, genres: torch.Tensor) -> None:
        self.genres = genres / genres.sum(1, keepdim=True).clamp(min=1.0)
        self.recent = torch.zeros(n_users, genres.shape[1])

    def observe(self, outcome: dict[str, torch.Tensor]) -> None:
        """Update after a step with its outcome (clicked items)."""
        clicked = outcome["click"].float()[:, None]
        self.recent = RECENT_DECAY * self.recent + clicked * self.genres[outcome["item"]]


def candidate_features(
    sessions: Sessions, table: CandidateTable, observer: SessionObserver, step: int
) -> torch.Tensor:
    """(B, N, F) features of every candidate; see :data:`FEATURES`."""
    available = torch.isfinite(sessions.candidate_scores)
    scores = torch.where(available, sessions.candidate_scores, sessions.candidate_scores[available].min())
    users = sessions.users
    overlap = (observer.genres[sessions.candidates] * observer.recent[:, None, :]).sum(-1)
    progress = torch.full_like(scores, step / sessions.config.horizon)
    return feature_stack(scores, table.like[users], table.rating[users], overlap, progress)


def feature_stack(
    scores: torch.Tensor,
    like: torch.Tensor,
    rating: torch.Tensor,
    overlap: torch.Tensor,
    progress: torch.Tensor,
) -> torch.Tensor:
    """(B, N, F) in the order of :data:`FEATURES`, scores standardised per row, ratings centred."""
    return torch.stack([standardise(scores), like, rating - 3.5, overlap, progress], dim=-1)


def first_step_features(table: CandidateTable) -> torch.Tensor:
    """(U, N, F) features of every user's candidates before a session's first slate (no clicks)."""
    zeros = torch.zeros_like(table.scores)
    return feature_stack(table.scores, table.like, table.rating, zeros, zeros)


def available_mask(sessions: Sessions) -> torch.Tensor:
    """(B, N) candidates the user has not clicked yet."""
    return torch.isfinite(sessions.candidate_scores)


class Agent:
    """A slate policy: ``start`` a batch of sessions, pick slate positions each step, ``observe``
    each step's outcome (the clicks an agent sees)."""

    def __init__(self, slate_size: int) -> None:
        self.slate_size = slate_size

    def start(self, sessions: Sessions) -> None:
        """Called once before the first step of a batch of sessions."""

    def __call__(self, sessions: Sessions, step: int) -> torch.Tensor:
        """Slate positions (B, K) into ``sessions.candidates``."""
        raise NotImplementedError

    def observe(self, outcome: dict[str, torch.Tensor]) -> None:
        """Called after every step with its outcome."""


class Greedy(Agent):
    """The finetuned model's ranking: the K best retrieval scores."""

    def __call__(self, sessions: Sessions, step: int) -> torch.Tensor:
        return top_k(sessions.candidate_scores, self.slate_size)


class ByFeature(Agent):
    """A myopic re-ranker: the K available candidates with the highest value of one feature (e.g.
    the predicted like probability) — the one-step reference an RL agent must also beat."""

    def __init__(self, slate_size: int, table: CandidateTable, feature: str) -> None:
        super().__init__(slate_size)
        self.values = getattr(table, feature)

    def __call__(self, sessions: Sessions, step: int) -> torch.Tensor:
        values = self.values[sessions.users].masked_fill(~available_mask(sessions), -torch.inf)
        return top_k(values, self.slate_size)


class Random(Agent):
    """K random available candidates."""

    def __init__(self, slate_size: int, generator: torch.Generator) -> None:
        super().__init__(slate_size)
        self.generator = generator

    def __call__(self, sessions: Sessions, step: int) -> torch.Tensor:
        keys = torch.rand(sessions.candidate_scores.shape, generator=self.generator)
        return top_k(keys.masked_fill(~available_mask(sessions), -1.0), self.slate_size)


def small_mlp(inputs: int, hidden: int) -> nn.Sequential:
    """Features → hidden (tanh) → one number: the small scoring networks of the learners."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, 1))


def plackett_luce_log_prob(logits: torch.Tensor, slates: torch.Tensor) -> torch.Tensor:
    """log P(ordered slate) when items are drawn one by one without replacement ∝ exp(logit)."""
    remaining = logits.clone()
    total = torch.zeros(len(logits))
    rows = torch.arange(len(logits))
    for position in range(slates.shape[1]):
        chosen = slates[:, position]
        total = total + remaining[rows, chosen] - torch.logsumexp(remaining, dim=1)
        remaining = remaining.index_put((rows, chosen), torch.tensor(-torch.inf))
    return total


@dataclass(frozen=True)
class ReinforceConfig:
    """REINFORCE settings."""

    hidden: int = 32
    lr: float = 3e-3
    gamma: float = 0.9
    temperature: float = 1.0  # Boltzmann exploration while training
    iterations: int = 150
    batch_users: int = 256
    seed: int = 0


class Reinforce(nn.Module):
    """A policy π(slate | s) = Plackett–Luce over candidate logits, and a value baseline V(s)."""

    def __init__(self, config: ReinforceConfig) -> None:
        super().__init__()
        torch.manual_seed(config.seed)
        self.config = config
        self.policy = small_mlp(len(FEATURES), config.hidden)
        self.value = small_mlp(2 * len(FEATURES), config.hidden)

    def logits(self, features: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        """(B, N) candidate logits; unavailable candidates at −inf."""
        return self.policy(features).squeeze(-1).masked_fill(~available, -torch.inf)

    def state_value(self, features: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        """V(s) (B,) from the mean and max of the available candidates' features."""
        weight = available.float()[..., None]
        mean = (features * weight).sum(1) / weight.sum(1).clamp(min=1.0)
        top = features.masked_fill(~available[..., None], -1e4).amax(1)
        return self.value(torch.cat([mean, top], dim=-1)).squeeze(-1)

    def logits_and_value(
        self, features: torch.Tensor, available: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both heads in one call (one forward pass for distributed data parallel)."""
        return self.logits(features, available), self.state_value(features, available)

    def act(self, features: torch.Tensor, available: torch.Tensor, k: int) -> torch.Tensor:
        """The deterministic slate: the K highest logits."""
        with torch.no_grad():
            return top_k(self.logits(features, available), k)


class FeatureAgent(Agent):
    """An agent that acts on :func:`candidate_features`, keeping its own record of the clicks."""

    def __init__(self, slate_size: int, table: CandidateTable, genres: torch.Tensor) -> None:
        super().__init__(slate_size)
        self.table, self.genre_table = table, genres
        self.observer: SessionObserver | None = None

    def start(self, sessions: Sessions) -> None:
        self.observer = SessionObserver(len(sessions.users), self.genre_table)

    def features(self, sessions: Sessions, step: int) -> torch.Tensor:
        """(B, N, F) features of the current candidates."""
        assert self.observer is not None, "start() first"
        return candidate_features(sessions, self.table, self.observer, step)

    def observe(self, outcome: dict[str, torch.Tensor]) -> None:
        assert self.observer is not None, "start() first"
        self.observer.observe(outcome)


class LearnedAgent(FeatureAgent):
    """Acts with a trained :class:`Reinforce` network: the K highest logits."""

    def __init__(
        self, slate_size: int, network: Reinforce, table: CandidateTable, genres: torch.Tensor
    ) -> None:
        super().__init__(slate_size, table, genres)
        self.network = network

    def __call__(self, sessions: Sessions, step: int) -> torch.Tensor:
        return self.network.act(self.features(sessions, step), available_mask(sessions), self.slate_size)


def discounted_returns(rewards: torch.Tensor, active: torch.Tensor, gamma: float) -> torch.Tensor:
    """Returns-to-go G_t = Σ_{t' ≥ t} γ^(t'−t) r_t' over (T, B) arrays (0 after a session ends)."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[1])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + gamma * running * active[t]
        returns[t] = running
    return returns


def train_reinforce(
    agent: Reinforce,
    new_sessions,
    table: CandidateTable,
    genres: torch.Tensor,
    train_users: np.ndarray,
    slate_size: int,
) -> list[dict[str, float]]:
    """On-policy REINFORCE with baseline; ``new_sessions(users, seed)`` starts a batch of sessions.
    Returns the learning curve (mean undiscounted return per iteration)."""
    config = agent.config
    optimiser = torch.optim.Adam(agent.parameters(), lr=config.lr)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    curve = []
    for iteration in range(config.iterations):
        users = rng.choice(train_users, config.batch_users)
        sessions = new_sessions(users, int(rng.integers(2**31)))
        observer = SessionObserver(len(users), genres)
        log_probs, values, rewards, actives = [], [], [], []
        step = 0
        while sessions.active.any():
            features = candidate_features(sessions, table, observer, step)
            available = available_mask(sessions)
            logits = agent.logits(features, available)
            slates = boltzmann(logits.detach(), slate_size, config.temperature, generator)
            log_probs.append(plackett_luce_log_prob(logits / config.temperature, slates))
            values.append(agent.state_value(features, available))
            actives.append(sessions.active.float())
            outcome = sessions.step(sessions.candidates.gather(1, slates))
            observer.observe(outcome)
            rewards.append(outcome["reward"])
            step += 1
        reward, active = torch.stack(rewards), torch.stack(actives)
        still = torch.cat([active[1:], torch.zeros(1, active.shape[1])])
        returns = discounted_returns(reward, still, config.gamma)
        value, log_prob = torch.stack(values), torch.stack(log_probs)
        advantage = (returns - value).detach()
        weight = active / active.sum()
        loss = -(weight * advantage * log_prob).sum() + 0.5 * (weight * (returns - value) ** 2).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        curve.append({"iteration": iteration + 1, "return": float(reward.sum(0).mean())})
    return curve
