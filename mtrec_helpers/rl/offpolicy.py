"""REINFORCE from logged sessions, with the top-K off-policy correction (Chen et al., WSDM 2019).

A production recommender learns from what the *current* system showed, not from its own slates.
Here the logging (behaviour) policy β is the greedy ranker softened into a softmax over its
standardised retrieval scores (temperature ``behaviour_temperature``): a slate is K draws without
replacement from β(·|s). Every clicked item a_t is one logged action with its probability
β(a_t|s_t) and its discounted return-to-go G_t.

The new policy π_θ = softmax over candidate logits learns from those logs alone. Per logged action
the gradient is

    w_t · λ_K(s_t, a_t) · (G_t − V(s_t)) · ∇ log π_θ(a_t|s_t)

- ``correction="none"``: w = λ = 1 — plain REINFORCE on the logs (biased towards β's choices);
- ``correction="is"``: w = min(π/β, cap), the (capped) importance weight of the per-item policy;
- ``correction="topk"``: additionally λ_K = K (1 − π)^(K−1) = ∂α/∂π, where α = 1 − (1 − π)^K is the
  probability that a item appears in a slate of K draws — the top-K correction: items already
  likely to be in the slate get less push, items the policy would rarely show get more.

π in the weights is treated as a constant (no gradient), as in the paper; the cap trades bias for
variance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from mtrec_helpers.core.engine import EngineConfig, Objective, accelerator_for, fit
from mtrec_helpers.core.memory import reusing_heap
from mtrec_helpers.rl.agents import (
    FEATURES,
    Reinforce,
    ReinforceConfig,
    SessionObserver,
    available_mask,
    candidate_features,
    discounted_returns,
)
from mtrec_helpers.rl.env import Sessions, session_groups
from mtrec_helpers.rl.exploration import boltzmann
from mtrec_helpers.rl.retrieval import CandidateTable

CORRECTIONS = ("none", "is", "topk")
SCORE = FEATURES.index("score")


@dataclass(frozen=True)
class OffPolicyConfig:
    """Logging and off-policy training settings."""

    behaviour_temperature: float = 0.5  # β = softmax(standardised greedy score / T)
    log_repeats: int = 4  # logged sessions per training user
    correction: str = "topk"
    cap: float = 10.0  # importance weights are clipped at this value
    epochs: int = 30
    minibatch: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        if self.correction not in CORRECTIONS:
            raise ValueError(
                f"OffPolicyConfig.correction must be one of {CORRECTIONS}, got {self.correction!r}"
            )
        if self.cap <= 0 or self.behaviour_temperature <= 0:
            raise ValueError("OffPolicyConfig.cap and behaviour_temperature must be positive")


@dataclass
class Logs:
    """Clicked steps of sessions logged by the behaviour policy (n rows)."""

    features: torch.Tensor  # (n, N, F) the candidates' features when the slate was shown
    available: torch.Tensor  # (n, N) candidates that could be shown
    action: torch.Tensor  # (n,) position of the clicked candidate
    behaviour: torch.Tensor  # (n,) β(action | state)
    returns: torch.Tensor  # (n,) discounted return from this step on
    session_returns: torch.Tensor  # (sessions,) undiscounted return of every logged session

    def __len__(self) -> int:
        return len(self.action)

    @classmethod
    def joined(cls, parts: Sequence[Logs]) -> Logs:
        """The clicked steps of several groups of sessions, in order (as :meth:`SessionStats.joined`)."""
        return cls(**{f.name: torch.cat([getattr(part, f.name) for part in parts]) for f in fields(cls)})


def behaviour_logits(features: torch.Tensor, available: torch.Tensor, temperature: float) -> torch.Tensor:
    """The logging policy's logits: the greedy ranker's standardised scores / T."""
    return (features[..., SCORE] / temperature).masked_fill(~available, -torch.inf)


def log_sessions(
    new_sessions,
    table: CandidateTable,
    genres: torch.Tensor,
    users: np.ndarray,
    slate_size: int,
    gamma: float,
    config: OffPolicyConfig,
) -> Logs:
    """Run the behaviour policy on ``log_repeats`` sessions per user and keep every clicked step
    (the sessions run in groups of at most :data:`~mtrec_helpers.rl.env.SESSION_BATCH`)."""
    generator = torch.Generator().manual_seed(config.seed)
    groups = reusing_heap(session_groups(np.tile(users, config.log_repeats), config.seed))
    parts = [_log_group(new_sessions(group, seed), table, genres, slate_size, gamma, config, generator)
             for group, seed in groups]  # fmt: skip
    return Logs.joined(parts)


def _log_group(
    sessions: Sessions,
    table: CandidateTable,
    genres: torch.Tensor,
    slate_size: int,
    gamma: float,
    config: OffPolicyConfig,
    generator: torch.Generator,
) -> Logs:
    """One group of sessions under the behaviour policy: its clicked steps."""
    observer = SessionObserver(len(sessions.users), genres)
    steps: list[dict[str, torch.Tensor]] = []
    step = 0
    while sessions.active.any():
        features = candidate_features(sessions, table, observer, step)
        available = available_mask(sessions)
        logits = behaviour_logits(features, available, config.behaviour_temperature)
        slates = boltzmann(logits, slate_size, 1.0, generator)
        items = sessions.candidates.gather(1, slates)
        outcome = sessions.step(items)
        observer.observe(outcome)
        shown_at = (items == outcome["item"][:, None]).float().argmax(1)  # slate position of the click
        steps.append(
            {
                "features": features,
                "available": available,
                "action": slates.gather(1, shown_at[:, None]).squeeze(1),
                "behaviour": torch.softmax(logits, dim=1),
                "click": outcome["click"],
                "reward": outcome["reward"],
                "active": outcome["active"].float(),
            }
        )
        step += 1
    return _clicked_steps(steps, gamma)


def _clicked_steps(steps: list[dict[str, torch.Tensor]], gamma: float) -> Logs:
    """Per-step records (B sessions each) → the clicked rows with their discounted returns."""
    reward = torch.stack([record["reward"] for record in steps])
    active = torch.stack([record["active"] for record in steps])
    still = torch.cat([active[1:], torch.zeros(1, active.shape[1])])
    returns = discounted_returns(reward, still, gamma)
    keys = ("features", "available", "action", "behaviour", "returns")
    rows: dict[str, list[torch.Tensor]] = {key: [] for key in keys}
    for t, record in enumerate(steps):
        clicked = record["click"]
        action = record["action"][clicked]
        rows["features"].append(record["features"][clicked])
        rows["available"].append(record["available"][clicked])
        rows["action"].append(action)
        rows["behaviour"].append(record["behaviour"][clicked].gather(1, action[:, None]).squeeze(1))
        rows["returns"].append(returns[t, clicked])
    return Logs(**{key: torch.cat(value) for key, value in rows.items()}, session_returns=reward.sum(0))


def top_k_multiplier(pi: torch.Tensor, k: int) -> torch.Tensor:
    """λ_K = K (1 − π)^(K−1): the derivative of α = 1 − (1 − π)^K with respect to π."""
    return k * (1.0 - pi) ** (k - 1)


def off_policy_loss(
    logits: torch.Tensor,
    action: torch.Tensor,
    behaviour: torch.Tensor,
    advantage: torch.Tensor,
    slate_size: int,
    correction: str,
    cap: float,
) -> torch.Tensor:
    """−mean(w · λ · advantage · log π(action)) for one minibatch; see the module docstring."""
    log_pi = torch.log_softmax(logits, dim=1).gather(1, action[:, None]).squeeze(1)
    pi = log_pi.detach().exp()
    weight = torch.ones_like(pi)
    if correction in ("is", "topk"):
        weight = (pi / behaviour).clamp(max=cap)
    if correction == "topk":
        weight = weight * top_k_multiplier(pi, slate_size)
    return -(weight * advantage * log_pi).mean()


class LogsObjective(Objective):
    """The batch learner on the shared engine: minibatches of logged clicks, the corrected policy
    gradient plus the value baseline's squared error."""

    def __init__(self, logs: Logs, slate_size: int, config: OffPolicyConfig) -> None:
        self.logs, self.slate_size, self.config = logs, slate_size, config

    def batches(self, generator: torch.Generator) -> list[np.ndarray]:
        return [
            rows.numpy()
            for rows in torch.randperm(len(self.logs), generator=generator).split(self.config.minibatch)
        ]

    def loss(self, call: Callable[..., Any], indices: np.ndarray, generator: torch.Generator):
        logs, rows = self.logs, torch.as_tensor(indices)
        logits, value = call("logits_and_value", logs.features[rows], logs.available[rows])
        advantage = (logs.returns[rows] - value).detach()
        policy = off_policy_loss(logits, logs.action[rows], logs.behaviour[rows], advantage,
                                 self.slate_size, self.config.correction, self.config.cap)  # fmt: skip
        baseline = 0.5 * ((logs.returns[rows] - value) ** 2).mean()
        return policy + baseline, {"policy_loss": policy.item(), "value_loss": baseline.item()}


def train_off_policy(
    agent: Reinforce, logs: Logs, slate_size: int, config: OffPolicyConfig
) -> list[dict[str, float]]:
    """Fit the policy and its value baseline on the logs with Adam at a constant learning rate
    (no clipping, keep the last epoch); returns the per-epoch mean losses."""
    settings = EngineConfig(
        epochs=config.epochs, lr=agent.config.lr, patience=config.epochs, seed=config.seed, max_batches=0,
        weight_decay=0.0, clip_norm=math.inf, schedule="constant", select_best=False,
    )  # fmt: skip
    objective = LogsObjective(logs, slate_size, config)
    fitted = fit(agent, [{"params": list(agent.parameters())}], objective, settings, accelerator_for("cpu"),
                 progress=False)  # fmt: skip
    return fitted.history


def train_from_logs(
    logs: Logs, slate_size: int, reinforce: ReinforceConfig, config: OffPolicyConfig
) -> tuple[Reinforce, list[dict[str, float]]]:
    """A fresh :class:`Reinforce` network trained off-policy on ``logs``."""
    agent = Reinforce(reinforce)
    return agent, train_off_policy(agent, logs, slate_size, config)
