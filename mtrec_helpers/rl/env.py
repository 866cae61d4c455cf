"""Simulated user sessions: a batched simulator, and a ``gymnasium.Env`` view of one session.

A session starts from a real user's history. Every step the agent shows a slate of ``slate_size``
items chosen from ``n_candidates`` retrieved for the user (by the finetuned model, through a
``candidates`` function). The user:

1. picks at most one item by a conditional logit with a no-click option (as in RecSim):
   utility_j = attraction_scale · attraction_j − fatigue_weight · (genre fatigue · genres_j), no-click utility
   ``no_click_utility``; items already in the history are never picked;
2. gets reward = satisfaction of the picked item (0 for no click); the item joins the history,
   which moves the attraction of every item;
3. tires of genres: fatigue ← decay · fatigue + genres of the picked item (normalised);
4. leaves with probability leave_base + leave_slope · (1 − reward), so poor slates end sessions;
5. has a **time budget** of ``horizon`` steps; every step spends one, and every click changes it by
   horizon_strength · (satisfaction − typical satisfaction): an attractive film the user dislikes
   shortens the session, one they enjoy wins back time lost earlier (a long-horizon effect that a
   myopic policy, maximising the next reward, does not see). The session ends when the budget is
   spent, and never lasts more than ``horizon`` steps, so at strength 0 it is the simulator without a
   budget and a stronger one never makes a session (or training on it) longer.

:class:`Sessions` simulates a batch of users at once with tensors (thousands of sessions in
seconds on CPU); :class:`SessionEnv` wraps a batch of one as a gymnasium environment that passes
``gymnasium.utils.env_checker.check_env``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from mtrec_helpers.rl.user_model import UserModel, row_moments, standardise

Candidates = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""(user indices (B,), multi-hot histories (B, V)) → the N best unseen items (B, N) by the
retrieval model and their scores (B, N), best first."""


@dataclass(frozen=True)
class SimulatorConfig:
    """The user's behaviour: choice, fatigue and leaving, and the session's shape."""

    slate_size: int = 5
    attraction_scale: float = 1.0  # fitted on held-out choices by rl.calibration.fit_attraction_scale
    n_candidates: int = 50
    horizon: int = 20
    no_click_utility: float = 1.0
    fatigue_weight: float = 0.5
    fatigue_decay: float = 0.7
    leave_base: float = 0.05
    leave_slope: float = 0.25
    horizon_strength: float = 0.0  # steps of budget per unit of satisfaction above the typical one


SESSION_BATCH = 8192
"""Sessions simulated together. Each holds a history over the catalogue and raw scores over the
columns the user model's EASE covers (1 B × catalogue + 4 B × head: 47 KB at ML-20M's shape, where
EASE covers the 5,000-item head), so logging or evaluating 100,000 users' sessions at once would
need 4.7 GB; beyond this many they run in consecutive groups."""


def session_groups(users: np.ndarray, seed: int, size: int = SESSION_BATCH) -> list[tuple[np.ndarray, int]]:
    """``users`` (one session each) in groups of at most ``size``, with a simulator seed per group:
    one group with ``seed`` itself when they fit (so small datasets run exactly as in one batch)."""
    if len(users) <= size:
        return [(users, seed)]
    groups = np.array_split(users, -(-len(users) // size))
    return [(group, seed + k) for k, group in enumerate(groups)]


@dataclass
class SessionStart:
    """What a batch of sessions starts from: the multi-hot histories (B, V), their raw EASE scores on
    the columns EASE covers (B, H: the catalogue's head at a large catalogue, every item otherwise;
    the other items score 0) and each row's mean and standard deviation over the catalogue (B, 1) —
    attraction is (raw − mean) / std, read at the items a step needs (:meth:`Sessions.attraction_at`),
    never written out over the catalogue.
    Computed once per batch of users and copied for every policy run on them
    (:func:`~mtrec_helpers.rl.experiments.session_factory`)."""

    history: torch.Tensor
    raw_scores: torch.Tensor
    centre: torch.Tensor
    spread: torch.Tensor

    @classmethod
    def of(cls, model: UserModel, histories: torch.Tensor) -> SessionStart:
        raw = model.ease.own_scores(histories)
        return cls(histories.bool().clone(), raw, *row_moments(raw, histories.shape[1]))

    def copy(self) -> SessionStart:
        """An independent copy (sessions write their state in place)."""
        return SessionStart(*(t.clone() for t in (self.history, self.raw_scores, self.centre, self.spread)))


class Sessions:
    """A batch of simulated sessions advanced together (all tensors on the CPU)."""

    def __init__(
        self,
        model: UserModel,
        config: SimulatorConfig,
        genres: torch.Tensor,
        users: torch.Tensor,
        histories: torch.Tensor | SessionStart,
        candidates: Candidates,
        generator: torch.Generator,
    ) -> None:
        self.model, self.config, self.candidates_fn, self.generator = model, config, candidates, generator
        self.genres = genres / genres.sum(1, keepdim=True).clamp(min=1.0)  # (V, G), rows sum to ≤ 1
        self.users = users
        start = histories if isinstance(histories, SessionStart) else SessionStart.of(model, histories)
        self.history, self.raw_scores, self.centre, self.spread = (
            start.history,
            start.raw_scores,
            start.centre,
            start.spread,
        )
        self.fatigue = torch.zeros(len(users), genres.shape[1])
        self.active = torch.ones(len(users), dtype=torch.bool)
        self.budget = torch.full((len(users),), float(config.horizon))  # steps left (item 5 above)
        self.steps = 0
        self.candidates, self.candidate_scores = self.candidates_fn(self.users, self.history)

    def attraction_at(self, items: torch.Tensor) -> torch.Tensor:
        """Standardised attraction (B, K) of each row's ``items`` (B, K) in the current state."""
        return (self.model.ease.read(self.raw_scores, items) - self.centre) / self.spread

    def choice_probabilities(self, slates: torch.Tensor) -> torch.Tensor:
        """(B, K + 1) probabilities of picking each slate item, and no click in the last column."""
        utility = self.config.attraction_scale * self.attraction_at(
            slates
        ) - self.config.fatigue_weight * torch.einsum("bg,bkg->bk", self.fatigue, self.genres[slates])
        seen = self.history.gather(1, slates) > 0
        repeated = torch.zeros_like(seen)
        repeated[:, 1:] = (slates[:, 1:, None] == slates[:, None, :-1]).tril().any(-1)
        utility = utility.masked_fill(seen | repeated, -torch.inf)
        no_click = torch.full((len(slates), 1), self.config.no_click_utility)
        return torch.softmax(torch.cat([utility, no_click], 1), dim=1)

    def step(self, slates: torch.Tensor) -> dict[str, torch.Tensor]:
        """Show ``slates`` (B, K) of item indices; returns reward, click, chosen item and done (B,)."""
        probabilities = self.choice_probabilities(slates)
        pick = torch.multinomial(probabilities, 1, generator=self.generator).squeeze(1)
        clicked = (pick < slates.shape[1]) & self.active
        rows = torch.arange(len(slates))
        item = torch.where(clicked, slates[rows, pick.clamp(max=slates.shape[1] - 1)], 0)
        reward = torch.where(clicked, self.model.satisfaction(self.users, item), 0.0)
        self.fatigue = self.config.fatigue_decay * self.fatigue + self.genres[item] * clicked[:, None]
        if clicked.any():
            self.history[rows[clicked], item[clicked]] = True
            self.raw_scores[clicked] += self.model.ease.own_rows(item[clicked])
            self.centre[clicked], self.spread[clicked] = row_moments(
                self.raw_scores[clicked], self.history.shape[1]
            )
        leave = torch.rand(len(slates), generator=self.generator) < (
            self.config.leave_base + self.config.leave_slope * (1.0 - reward)
        )
        self.steps += 1
        self.budget += (
            torch.where(
                clicked, self.config.horizon_strength * (reward - self.model.typical_satisfaction), 0.0
            )
            - 1.0
        )
        done = self.active & (leave | (self.budget <= 0) | (self.steps >= self.config.horizon))
        result = {
            "reward": reward,
            "click": clicked,
            "item": item,
            "done": done,
            "active": self.active.clone(),
        }
        self.active = self.active & ~done
        self.candidates, self.candidate_scores = self.candidates_fn(self.users, self.history)
        return result


class SessionEnv(gym.Env):
    """One simulated session as a gymnasium environment.

    Observation: ``candidates`` (the N retrieved item indices, best first), ``scores`` (their
    retrieval scores, standardised and clipped to ±10), ``fatigue`` (per genre) and ``step``.
    Action: K positions into the candidate list (the slate). Reward: the satisfaction of the
    clicked item, 0 for no click. ``reset(seed=…)`` draws the user from ``users``.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        model: UserModel,
        config: SimulatorConfig,
        genres: torch.Tensor,
        users: np.ndarray,
        histories: torch.Tensor,
        candidates: Candidates,
    ) -> None:
        super().__init__()
        self.model, self.config, self.genre_table, self.candidates_fn = model, config, genres, candidates
        self.user_pool, self.histories = users, histories
        n_items = histories.shape[1]
        self.observation_space = spaces.Dict(
            {
                "candidates": spaces.Box(0, n_items - 1, (config.n_candidates,), dtype=np.int64),
                "scores": spaces.Box(-10.0, 10.0, (config.n_candidates,), dtype=np.float32),
                "fatigue": spaces.Box(  # a geometric sum of per-click shares ≤ 1
                    0.0, 1.0 / (1.0 - config.fatigue_decay), (genres.shape[1],), dtype=np.float32
                ),
                "step": spaces.Discrete(config.horizon + 1),
            }
        )
        self.action_space = spaces.MultiDiscrete([config.n_candidates] * config.slate_size)
        self.sessions: Sessions | None = None

    def _scores(self) -> np.ndarray:
        """Standardised retrieval scores of the unclicked candidates; clicked ones at the floor −10."""
        assert self.sessions is not None
        scores = self.sessions.candidate_scores[:1]
        available = torch.isfinite(scores)
        filled = torch.where(available, scores, scores[available].min() if available.any() else 0.0)
        return standardise(filled).clamp(-10, 10).masked_fill(~available, -10.0)[0].numpy().astype(np.float32)

    def _observation(self) -> dict[str, np.ndarray | int]:
        assert self.sessions is not None
        return {
            "candidates": self.sessions.candidates[0].numpy().astype(np.int64),
            "scores": self._scores(),
            "fatigue": self.sessions.fatigue[0].numpy().astype(np.float32),
            "step": int(self.sessions.steps),
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        user = int(self.np_random.choice(self.user_pool))
        generator = torch.Generator().manual_seed(int(self.np_random.integers(2**31)))
        self.sessions = Sessions(
            self.model, self.config, self.genre_table, torch.tensor([user]), self.histories[[user]],
            self.candidates_fn, generator,
        )  # fmt: skip
        return self._observation(), {"user": user}

    def step(self, action: np.ndarray):
        assert self.sessions is not None, "call reset() first"
        slate = self.sessions.candidates[0, torch.as_tensor(np.asarray(action), dtype=torch.long)][None, :]
        outcome = self.sessions.step(slate)
        info = {"click": bool(outcome["click"][0]), "item": int(outcome["item"][0])}
        truncated = bool(outcome["done"][0]) and self.sessions.steps >= self.config.horizon
        terminated = bool(outcome["done"][0]) and not truncated
        return self._observation(), float(outcome["reward"][0]), terminated, truncated, info
