"""The myopic oracle: the strongest policy that does not plan.

Each step it shows the slate that maximises the simulator's own expected immediate reward — it reads
the user model (attraction, fatigue, satisfaction), which no recommender can, and ignores what a
slate does to the rest of the session. Under the conditional logit with a no-click option, item j of
slate S is picked with probability v_j / (1 + Σ_{k∈S} v_k), v_j = exp(u_j − u_0), so the expected
reward of a slate is the ratio

    f(S) = Σ_{j∈S} v_j r_j / (1 + Σ_{j∈S} v_j),   |S| = K,

with r_j the satisfaction of item j. Dinkelbach's method maximises it exactly: for a guess λ the best
slate of K maximises Σ_{j∈S} v_j (r_j − λ) — the top K of v_j (r_j − λ) — and λ ← f(that slate)
increases until the slate stops changing (a few steps). An RL policy that beats this one gains by
planning, not by knowing the user better.
"""

from __future__ import annotations

import torch

from mtrec_helpers.rl.agents import Agent, available_mask
from mtrec_helpers.rl.env import Sessions
from mtrec_helpers.rl.exploration import top_k

MAX_ROUNDS = 50


def slate_values(sessions: Sessions) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N) choice weights v_j = exp(u_j − u_0) of every candidate (0 where it cannot be picked)
    and its satisfaction r_j, under the simulator's user model in its current state."""
    config, candidates = sessions.config, sessions.candidates
    attraction = sessions.attraction_at(candidates)
    tired = torch.einsum("bg,bng->bn", sessions.fatigue, sessions.genres[candidates])
    utility = config.attraction_scale * attraction - config.fatigue_weight * tired - config.no_click_utility
    weights = torch.exp(utility).masked_fill(~pickable(sessions), 0.0)
    return weights, sessions.model.satisfaction(sessions.users[:, None], candidates)


def pickable(sessions: Sessions) -> torch.Tensor:
    """(B, N) candidates the user could still pick (unseen): every slate is K of them, as any agent's."""
    return available_mask(sessions) & (sessions.history.gather(1, sessions.candidates) == 0)


def expected_reward(weights: torch.Tensor, rewards: torch.Tensor, slate: torch.Tensor) -> torch.Tensor:
    """(B,) f(S): the expected immediate reward of each row's slate (positions into the candidates)."""
    v, r = weights.gather(1, slate), rewards.gather(1, slate)
    return (v * r).sum(1) / (1.0 + v.sum(1))


def best_slate(weights: torch.Tensor, rewards: torch.Tensor, k: int, allowed: torch.Tensor) -> torch.Tensor:
    """(B, K) positions of the ``allowed`` slate maximising f(S) (Dinkelbach's iteration; see the
    module docstring). Starting from a feasible slate's value, each round's slate is at least as good."""

    def top(level: torch.Tensor) -> torch.Tensor:
        return top_k((weights * (rewards - level[:, None])).masked_fill(~allowed, -torch.inf), k)

    slate = top(torch.zeros(len(weights)))
    level = expected_reward(weights, rewards, slate)
    for _ in range(MAX_ROUNDS):
        candidate = top(level)
        value = expected_reward(weights, rewards, candidate)
        better = value > level + 1e-7
        if not better.any():
            break
        slate = torch.where(better[:, None], candidate, slate)
        level = torch.where(better, value, level)
    return slate


class MyopicOracle(Agent):
    """Each step, the slate of maximal expected immediate reward under the simulator's user model."""

    def __call__(self, sessions: Sessions, step: int) -> torch.Tensor:
        weights, rewards = slate_values(sessions)
        return best_slate(weights, rewards, self.slate_size, pickable(sessions))


class PlanningOracle(Agent):
    """The myopic oracle with each click's effect on the session's time budget priced in."""

    def __init__(self, slate_size: int, step_value: float) -> None:
        super().__init__(slate_size)
        self.step_value = step_value  # reward per step of session, e.g. the myopic oracle's return / length

    def __call__(self, sessions: Sessions, step: int) -> torch.Tensor:
        weights, rewards = slate_values(sessions)
        budget = sessions.config.horizon_strength * (rewards - sessions.model.typical_satisfaction)
        return best_slate(weights, rewards + self.step_value * budget, self.slate_size, pickable(sessions))
