"""SlateQ (Ie et al. 2019): Q-learning for slates by decomposing the slate value into item values.

With a conditional-logit user choice, the value of showing slate A in state s is

    Q(s, A) = Σ_{i ∈ A} P(i | s, A) · Q̄(s, i),   P(i | s, A) = v(s, i) / (v₀ + Σ_{j ∈ A} v(s, j)),

where Q̄(s, i) is the long-term value of the user consuming item i. Q̄ is learned by temporal
differences on consumed items only — target r + γ·Q(s′, A′) with A′ the best next slate under a
target network — from a replay buffer; v(s, i) = exp(w·f(s, i)) and v₀ are a choice model fitted by
maximum likelihood on the logged slates and clicks. Slates are built greedily: the K candidates
with the highest v·Q̄ (SlateQ's top-K heuristic), explored ε-greedily with ε decaying.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mtrec_helpers.rl.agents import FEATURES, FeatureAgent, available_mask, small_mlp
from mtrec_helpers.rl.env import Sessions
from mtrec_helpers.rl.exploration import decayed, epsilon_greedy, top_k
from mtrec_helpers.rl.retrieval import CandidateTable


@dataclass(frozen=True)
class SlateQConfig:
    """Q-learning settings."""

    hidden: int = 32
    lr: float = 3e-3
    gamma: float = 0.9
    iterations: int = 60  # batches of training sessions
    batch_users: int = 256
    updates_per_step: int = 1
    minibatch: int = 512
    buffer_size: int = 50_000
    target_every: int = 50  # updates between target-network copies
    epsilon_start: float = 0.5
    epsilon_end: float = 0.05
    seed: int = 0


class SlateQ(nn.Module):
    """Item values Q̄(s, i), a target copy, and a conditional-logit choice model."""

    def __init__(self, config: SlateQConfig) -> None:
        super().__init__()
        torch.manual_seed(config.seed)
        self.config = config
        width = len(FEATURES)
        self.q = small_mlp(width, config.hidden)
        self.target = small_mlp(width, config.hidden)
        self.target.load_state_dict(self.q.state_dict())
        self.choice = nn.Linear(width, 1)  # log v(s, i)
        self.no_click = nn.Parameter(torch.zeros(1))  # log v₀

    def slate_scores(
        self, features: torch.Tensor, available: torch.Tensor, target: bool = False
    ) -> torch.Tensor:
        """v(s, i)·Q̄(s, i) per candidate (B, N); the slate is its top K."""
        values = (self.target if target else self.q)(features).squeeze(-1)
        attraction = torch.exp(self.choice(features).squeeze(-1))
        return (attraction * values).masked_fill(~available, -torch.inf)

    def slate_value(self, features: torch.Tensor, available: torch.Tensor, k: int) -> torch.Tensor:
        """Q(s, A*) (B,) of the best slate under the target network and the choice model."""
        scores = self.slate_scores(features, available, target=True)
        slate = top_k(scores, k)
        attraction = torch.exp(self.choice(features).squeeze(-1)).gather(1, slate)
        attraction = attraction * available.gather(1, slate)
        values = self.target(features).squeeze(-1).gather(1, slate)
        return (attraction * values).sum(1) / (torch.exp(self.no_click) + attraction.sum(1))

    def choice_log_likelihood(self, slate_features: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
        """Mean log P(choice | slate) under the conditional logit (choice == K means no click)."""
        logits = torch.cat([self.choice(slate_features).squeeze(-1), self.no_click.expand(len(choice), 1)], 1)
        return -nn.functional.cross_entropy(logits, choice)


class _Replay:
    """A ring buffer of consumed-item transitions."""

    def __init__(self, size: int, n_candidates: int, width: int) -> None:
        self.item = torch.zeros(size, width)
        self.reward = torch.zeros(size)
        self.next_features = torch.zeros(size, n_candidates, width)
        self.next_available = torch.zeros(size, n_candidates, dtype=torch.bool)
        self.done = torch.zeros(size, dtype=torch.bool)
        self.size, self.count = size, 0

    def add(self, item, reward, next_features, next_available, done) -> None:
        for start in range(0, len(reward), self.size):
            rows = (torch.arange(len(reward[start : start + self.size])) + self.count) % self.size
            self.item[rows], self.reward[rows] = (
                item[start : start + self.size],
                reward[start : start + self.size],
            )
            self.next_features[rows] = next_features[start : start + self.size]
            self.next_available[rows] = next_available[start : start + self.size]
            self.done[rows] = done[start : start + self.size]
            self.count += len(rows)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(min(self.count, self.size), (n,), generator=generator)


class SlateQAgent(FeatureAgent):
    """Acts greedily (or ε-greedily while training) on v·Q̄; keeps the last step's features."""

    def __init__(self, slate_size: int, network: SlateQ, table: CandidateTable, genres: torch.Tensor) -> None:
        super().__init__(slate_size, table, genres)
        self.network = network
        self.epsilon, self.generator = 0.0, torch.Generator().manual_seed(network.config.seed)
        self.last_features: torch.Tensor | None = None

    def __call__(self, sessions: Sessions, step: int) -> torch.Tensor:
        self.last_features = self.features(sessions, step)
        with torch.no_grad():
            scores = self.network.slate_scores(self.last_features, available_mask(sessions))
        if self.epsilon > 0:
            return epsilon_greedy(scores, self.slate_size, self.epsilon, self.generator)
        return top_k(scores, self.slate_size)


def train_slateq(agent: SlateQAgent, new_sessions, train_users: np.ndarray) -> list[dict[str, float]]:
    """Collect sessions ε-greedily, learn the choice model and Q̄ from replay; returns the curve."""
    network, config = agent.network, agent.network.config
    optimiser = torch.optim.Adam(
        [*network.q.parameters(), *network.choice.parameters(), network.no_click], lr=config.lr
    )
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    replay = _Replay(config.buffer_size, agent.table.items.shape[1], len(FEATURES))
    updates, curve = 0, []
    for iteration in range(config.iterations):
        agent.epsilon = decayed(config.epsilon_start, config.epsilon_end, iteration, config.iterations)
        sessions = new_sessions(rng.choice(train_users, config.batch_users), int(rng.integers(2**31)))
        agent.start(sessions)
        total, step = torch.zeros(config.batch_users), 0
        while sessions.active.any():
            positions = agent(sessions, step)
            features = agent.last_features
            active = sessions.active.clone()
            outcome = sessions.step(sessions.candidates.gather(1, positions))
            agent.observe(outcome)
            total += outcome["reward"]
            step += 1
            slate_features = features.gather(1, positions[..., None].expand(-1, -1, features.shape[-1]))
            shown_rank = (
                (sessions.candidates.gather(1, positions) == outcome["item"][:, None]).float().argmax(1)
            )
            choice = torch.where(outcome["click"], shown_rank, positions.shape[1])
            clicked = outcome["click"] & active
            if clicked.any():
                next_features = agent.features(sessions, step)
                item_features = slate_features[clicked, shown_rank[clicked]]
                replay.add(item_features, outcome["reward"][clicked], next_features[clicked],
                           available_mask(sessions)[clicked], outcome["done"][clicked])  # fmt: skip
            for _ in range(config.updates_per_step if replay.count else 0):
                rows = replay.sample(config.minibatch, generator)
                with torch.no_grad():
                    future = network.slate_value(
                        replay.next_features[rows], replay.next_available[rows], positions.shape[1]
                    )
                    target = replay.reward[rows] + config.gamma * future * (~replay.done[rows]).float()
                td = network.q(replay.item[rows]).squeeze(-1) - target
                choice_loss = -network.choice_log_likelihood(slate_features[active], choice[active])
                loss = (td**2).mean() + choice_loss
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                updates += 1
                if updates % config.target_every == 0:
                    network.target.load_state_dict(network.q.state_dict())
        curve.append({"iteration": iteration + 1, "return": float(total.mean()), "epsilon": agent.epsilon})
    agent.epsilon = 0.0
    return curve
