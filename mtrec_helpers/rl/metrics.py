"""Run a policy through simulated sessions and report session-level metrics with intervals.

Per session: return (sum of rewards, undiscounted), clicks, length (steps until the user left or
the horizon), intra-slate genre diversity (mean pairwise 1 − cosine similarity of the slate's
genre vectors, averaged over the session's slates) and novelty (mean −log2 of the clicked items'
training popularity share). Agents are compared *paired*: the same users, in the same order, from
the same simulator seed; the difference in return gets a bootstrap interval over sessions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from mtrec_helpers.core.evaluation import bootstrap_ci, paired_bootstrap
from mtrec_helpers.rl.agents import Agent
from mtrec_helpers.rl.env import Sessions


def intra_slate_diversity(genres: torch.Tensor, slates: torch.Tensor) -> torch.Tensor:
    """Mean pairwise (1 − cosine similarity) of the genre vectors in each slate, shape (B,)."""
    vectors = torch.nn.functional.normalize(genres[slates].float(), dim=-1)
    similarity = vectors @ vectors.transpose(1, 2)
    k = slates.shape[1]
    pairs = similarity.triu(diagonal=1).sum((1, 2)) / (k * (k - 1) / 2)
    return 1.0 - pairs


@dataclass
class SessionStats:
    """Per-session arrays of one policy's run."""

    returns: np.ndarray
    clicks: np.ndarray
    lengths: np.ndarray
    diversity: np.ndarray
    novelty: np.ndarray

    @classmethod
    def joined(cls, parts: Sequence[SessionStats]) -> SessionStats:
        """The sessions of several groups, in order."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def summary(self, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
        """Means (return with its bootstrap 95% interval) as a metrics.json record."""
        return {
            "return_mean": float(self.returns.mean()),
            "return_ci": list(bootstrap_ci(self.returns, n_boot=n_boot, seed=seed)),
            "clicks_mean": float(self.clicks.mean()),
            "length_mean": float(self.lengths.mean()),
            "diversity_mean": float(np.nanmean(self.diversity)),
            "novelty_mean": float(np.nanmean(self.novelty)),
            "n_sessions": len(self.returns),
        }


def simulate(
    agent: Agent, sessions: Sessions, genres: torch.Tensor, popularity: torch.Tensor
) -> SessionStats:
    """Run ``agent`` until every session has ended; ``popularity``: each item's training share."""
    n = len(sessions.users)
    totals = {name: torch.zeros(n) for name in ("returns", "clicks", "lengths", "diversity", "novelty")}
    step = 0
    agent.start(sessions)
    while sessions.active.any():
        slates = sessions.candidates.gather(1, agent(sessions, step))
        active = sessions.active.clone().float()
        totals["diversity"] += active * intra_slate_diversity(genres, slates)
        outcome = sessions.step(slates)
        agent.observe(outcome)
        clicked = outcome["click"].float()
        totals["returns"] += outcome["reward"]
        totals["clicks"] += clicked
        totals["lengths"] += active
        totals["novelty"] += clicked * -torch.log2(popularity[outcome["item"]].clamp(min=1e-12))
        step += 1
    return SessionStats(
        returns=totals["returns"].numpy(),
        clicks=totals["clicks"].numpy(),
        lengths=totals["lengths"].numpy(),
        diversity=(totals["diversity"] / totals["lengths"].clamp(min=1)).numpy(),
        novelty=(totals["novelty"] / totals["clicks"]).numpy(),  # NaN for sessions without a click
    )


def compare(
    stats: Mapping[str, SessionStats], reference: str = "greedy", n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Every policy's summary; the others also get ``diff_vs_<reference>`` (paired) with its interval."""
    records = {}
    for name, run in stats.items():
        record = run.summary(n_boot, seed)
        if name != reference:
            paired = paired_bootstrap(run.returns, stats[reference].returns, n_boot=n_boot, seed=seed)
            record[f"diff_vs_{reference}"] = paired.diff
            record[f"diff_vs_{reference}_ci"] = list(paired.ci)
        records[name] = record
    return records
