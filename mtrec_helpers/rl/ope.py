"""Off-policy evaluation: a slate policy's value from the logger's sessions, without the simulator.

A deployed recommender has logs, not a simulator. Here the logs are sessions of the softened greedy
logger β (Plackett–Luce over softmax(standardised greedy score / T), as ``rl.offpolicy``); each
logged *first slate* is one contextual-bandit round: the user's state x, the ordered slate S drawn
from β(·|x) with its probability, the reward r (the clicked film's satisfaction, 0 for no click).
A target policy π is Plackett–Luce over its own candidate logits. Its value is
V(π) = E_x E_{S∼π(x)} E[r | x, S], and with w = π(S|x) / β(S|x):

    IPS    V̂ = (1/n) Σ w r                       unbiased, variance grows with w
    SNIPS  V̂ = Σ w r / Σ w                        slightly biased, far less variance
    DR     V̂ = (1/n) Σ [ q̂_π(x) + w (r − q̂(x, S)) ]   a reward model q̂ plus the IPS correction of its error

q̂(x, S) is a conditional logit fitted on the logged clicks — v̂_j = exp(a·f_j + b) against a no-click
weight 1 — times a linear model of the clicked films' reward, both on the recommender's features
(never the simulator's); q̂_π(x) = E_{S∼π} q̂(x, S) by sampling slates from π.

The truth on the same users comes from the simulator: the expected reward of the slates π draws,
computed exactly from the user model (``rl.oracle.expected_reward``). Intervals are bootstrap
intervals over the logged sessions; the distance from the logger is the weights' effective sample
size n_eff / n = (Σw)² / (n Σw²): 1 for the logger itself, near 0 for a policy it never resembles.

Only the first slate is evaluated. A session's value would need the product of the weights of every
slate along it (per-decision importance sampling), whose variance grows exponentially with the
session's length — with n_eff / n of one slate already small for a far policy, hopeless here.
The Open Bandit Pipeline (``obp``) has these estimators but no release for Python 3.11 and later, so
the formulas are written out here, a screen each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mtrec_helpers.core.memory import reusing_heap
from mtrec_helpers.rl.agents import (
    SessionObserver,
    available_mask,
    candidate_features,
    plackett_luce_log_prob,
)
from mtrec_helpers.rl.env import SESSION_BATCH, session_groups
from mtrec_helpers.rl.experiments import SessionFactory
from mtrec_helpers.rl.exploration import boltzmann
from mtrec_helpers.rl.offpolicy import behaviour_logits
from mtrec_helpers.rl.oracle import expected_reward, slate_values

PolicyLogits = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(features (B, N, F), available (B, N)) → Plackett–Luce logits (B, N), −inf where unavailable."""


@dataclass
class FirstSlates:
    """The logger's first slate of each logged session, and the simulator's truth for that state."""

    features: torch.Tensor  # (B, N, F) what the recommender knew
    available: torch.Tensor  # (B, N)
    slates: torch.Tensor  # (B, K) ordered positions drawn from β
    clicked: torch.Tensor  # (B,) slate position of the click, K for no click
    reward: torch.Tensor  # (B,)
    log_behaviour: torch.Tensor  # (B,) log β(S | x)
    true_weights: torch.Tensor  # (B, N) the simulator's choice weights (for the truth only)
    true_rewards: torch.Tensor  # (B, N) the simulator's satisfaction (for the truth only)

    @classmethod
    def joined(cls, parts: list[FirstSlates]) -> FirstSlates:
        """The logs of consecutive groups of sessions as one."""
        return cls(*(torch.cat([getattr(part, f.name) for part in parts]) for f in fields(cls)))


def log_first_slates(
    factory: SessionFactory,
    users: np.ndarray,
    seed: int,
    table,
    genres: torch.Tensor,
    slate_size: int,
    temperature: float,
    generator: torch.Generator,
    group: int = SESSION_BATCH,
) -> FirstSlates:
    """One logged session per entry of ``users`` (the simulator ``factory`` starts them from ``seed``),
    in groups of at most ``group`` sessions (:func:`~mtrec_helpers.rl.env.session_groups`: one group
    with ``seed`` itself when they fit), so memory does not grow with the number of sessions."""
    groups = reusing_heap(session_groups(users, seed, group))
    return FirstSlates.joined(
        [
            first_slates(factory(part, at), table, genres, slate_size, temperature, generator)
            for part, at in groups
        ]
    )


def first_slates(
    sessions, table, genres: torch.Tensor, slate_size: int, temperature: float, generator: torch.Generator
) -> FirstSlates:
    """Show each session's first slate from the logger β and record the round (see the module docstring)."""
    features = candidate_features(sessions, table, SessionObserver(len(sessions.users), genres), 0)
    available = available_mask(sessions)
    logits = behaviour_logits(features, available, temperature)
    slates = boltzmann(logits, slate_size, 1.0, generator)
    true_weights, true_rewards = slate_values(sessions)
    items = sessions.candidates.gather(1, slates)
    outcome = sessions.step(items)
    clicked = torch.where(outcome["click"], (items == outcome["item"][:, None]).float().argmax(1), slate_size)
    return FirstSlates(features, available, slates, clicked, outcome["reward"],
                       plackett_luce_log_prob(logits, slates), true_weights, true_rewards)  # fmt: skip


@dataclass
class RewardModel:
    """q̂(x, S) = Σ_j v̂_j ρ̂_j / (1 + Σ_j v̂_j): a conditional logit for the click and a linear reward."""

    choice: torch.Tensor  # (F + 1,) a, b of log v̂ = a·f + b
    reward: torch.Tensor  # (F + 1,) c, d of ρ̂ = c·f + d

    def item_terms(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) v̂ and ρ̂ of every candidate."""
        v = torch.exp(features @ self.choice[:-1] + self.choice[-1])
        return v, (features @ self.reward[:-1] + self.reward[-1]).clamp(0.0, 1.0)

    def value(self, features: torch.Tensor, slates: torch.Tensor) -> torch.Tensor:
        """(B,) q̂(x, S) of each row's slate."""
        v, rho = (t.gather(1, slates) for t in self.item_terms(features))
        return (v * rho).sum(1) / (1.0 + v.sum(1))


def fit_reward_model(logs: FirstSlates, steps: int = 200) -> RewardModel:
    """Maximum likelihood of the logged clicks (softmax over the slate and no click) and least squares
    of the clicked films' rewards, on the recommender's features.

    Both in float64, the likelihood to convergence and the least squares by SVD (minimum norm over
    features that never vary, e.g. the fatigue features of a first slate): in float32 the solution
    jumped between two answers with a relative change of 1e-7 in the features (the rank decision of
    the QR solver), which moved a doubly-robust estimate by 0.1 between two runs of the same notebook."""
    shown = logs.features.double().gather(1, logs.slates[..., None].expand(-1, -1, logs.features.shape[-1]))
    choice = torch.zeros(shown.shape[-1] + 1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([choice], max_iter=steps, tolerance_grad=1e-10, tolerance_change=1e-14,
                                  line_search_fn="strong_wolfe")  # fmt: skip

    def nll() -> torch.Tensor:
        optimiser.zero_grad()
        utility = torch.cat(
            [shown @ choice[:-1] + choice[-1], torch.zeros(len(shown), 1, dtype=torch.float64)], 1
        )
        loss = F.cross_entropy(utility, logs.clicked)
        loss.backward()
        return loss

    optimiser.step(nll)
    clicks = logs.clicked < logs.slates.shape[1]
    rows = shown[clicks, logs.clicked[clicks]]
    design = torch.cat([rows, torch.ones(len(rows), 1, dtype=torch.float64)], dim=1)
    target = logs.reward[clicks].double()[:, None]
    reward = torch.linalg.lstsq(design, target, driver="gelsd").solution.squeeze(1)
    return RewardModel(choice.detach().float(), reward.float())


@dataclass
class Rounds:
    """Per logged round, what every estimator needs for one target policy."""

    weight: torch.Tensor  # (B,) π(S|x) / β(S|x)
    reward: torch.Tensor  # (B,)
    model_logged: torch.Tensor  # (B,) q̂(x, S_logged)
    model_policy: torch.Tensor  # (B,) q̂_π(x)
    truth: torch.Tensor  # (B,) the simulator's E_{S∼π}[r | x]


def rounds_for(
    logs: FirstSlates, policy: PolicyLogits, model: RewardModel, samples: int, generator: torch.Generator
) -> Rounds:
    """Importance weights, reward-model terms and the simulator's truth for ``policy`` on ``logs``."""
    with torch.no_grad():
        logits = policy(logs.features, logs.available)
        weight = torch.exp(plackett_luce_log_prob(logits, logs.slates) - logs.log_behaviour)
        k = logs.slates.shape[1]
        drawn = [boltzmann(logits, k, 1.0, generator) for _ in range(samples)]
        model_policy = torch.stack([model.value(logs.features, s) for s in drawn]).mean(0)
        truth = torch.stack([expected_reward(logs.true_weights, logs.true_rewards, s) for s in drawn]).mean(0)
    return Rounds(weight, logs.reward, model.value(logs.features, logs.slates), model_policy, truth)


def estimates(rounds: Rounds, rows: np.ndarray | slice = slice(None)) -> dict[str, float]:
    """IPS, SNIPS and DR on the rounds ``rows`` (a bootstrap resample, or all)."""
    w, r = rounds.weight[rows].double(), rounds.reward[rows].double()
    correction = w * (r - rounds.model_logged[rows].double())
    return {
        "ips": float((w * r).mean()),
        "snips": float((w * r).sum() / w.sum().clamp(min=1e-300)),
        "dr": float((rounds.model_policy[rows].double() + correction).mean()),
    }


def evaluate_offline(rounds: Rounds, n_boot: int, seed: int) -> dict[str, Any]:
    """Every estimator with its bootstrap 95% interval over rounds, the truth, each estimate's error
    and whether its interval covers the truth, and the weights' effective sample size share."""
    n = len(rounds.weight)
    rng = np.random.default_rng(seed)
    boot = [estimates(rounds, rng.integers(0, n, n)) for _ in range(n_boot)]
    point, truth = estimates(rounds), float(rounds.truth.mean())
    w = rounds.weight.double()
    record: dict[str, Any] = {"truth": truth, "ess_share": float(w.sum() ** 2 / (n * (w**2).sum()))}
    for name, value in point.items():
        low, high = np.quantile([b[name] for b in boot], [0.025, 0.975])
        record[name] = value
        record[f"{name}_ci"] = [float(low), float(high)]
        record[f"{name}_error"] = value - truth
        record[f"{name}_covers"] = bool(low <= truth <= high)
    return record


def off_policy_evaluation(
    logs: FirstSlates,
    policies: Mapping[str, PolicyLogits],
    samples: int,
    n_boot: int,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Each policy's offline estimates against the simulator's truth (see :func:`evaluate_offline`)."""
    model = fit_reward_model(logs)
    generator = torch.Generator().manual_seed(seed)
    return {name: evaluate_offline(rounds_for(logs, policy, model, samples, generator), n_boot, seed)
            for name, policy in policies.items()}  # fmt: skip
