"""The pieces notebook 04 puts together: the world, session factories, evaluation and replays."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mtrec_helpers.core.evaluation import history_mask
from mtrec_helpers.core.memory import reusing_heap
from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.rl.agents import Agent
from mtrec_helpers.rl.env import Sessions, SessionStart, SimulatorConfig, session_groups
from mtrec_helpers.rl.metrics import SessionStats, compare, simulate
from mtrec_helpers.rl.retrieval import CandidateTable
from mtrec_helpers.rl.user_model import UserModel

SessionFactory = Callable[[np.ndarray, int], Sessions]


@dataclass
class World:
    """What every simulated session shares: histories, genres, popularity and the candidates."""

    data: ProcessedData
    table: CandidateTable
    sequences: list[np.ndarray]  # every user's items through the validation split
    genres: torch.Tensor  # (V, G)
    popularity: torch.Tensor  # (V,) training share of each item

    @classmethod
    def build(cls, data: ProcessedData, table: CandidateTable) -> World:
        train = [np.unique(sequence) for sequence in data.sequences("train")]
        counts = np.bincount(np.concatenate(train), minlength=data.n_items + 2) if train else np.zeros(0)
        counts = torch.from_numpy(counts.astype(np.float32))
        return cls(
            data, table, data.sequences("valid"), torch.from_numpy(data.genre_matrix()), counts / counts.sum()
        )

    def histories(self, users: torch.Tensor) -> torch.Tensor:
        """Multi-hot histories (B, V) of these users (built per batch: never users × catalogue)."""
        return history_mask(
            [self.sequences[u] for u in users.tolist()], self.data.n_items + 2, torch.device("cpu")
        )


def session_factory(world: World, user_model: UserModel, config: SimulatorConfig) -> SessionFactory:
    """``factory(users, seed)`` starts one session per entry of ``users`` (repeats allowed). The start
    of the last batch of users is kept, so every policy evaluated on the same users (one after the
    other, :func:`run_sessions`) starts from a copy instead of scoring the catalogue again."""
    last: dict[bytes, SessionStart] = {}

    def start(users: np.ndarray, seed: int) -> Sessions:
        chosen = torch.as_tensor(np.asarray(users), dtype=torch.long)
        key = chosen.numpy().tobytes()
        if key not in last:
            last.clear()
            last[key] = SessionStart.of(user_model, world.histories(chosen))
        return Sessions(
            user_model, config, world.genres, chosen, last[key].copy(), world.table.lookup,
            torch.Generator().manual_seed(seed),
        )  # fmt: skip

    return start


def split_users(n_users: int, heldout_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Users whose sessions train the agents, and held-out users whose sessions evaluate them."""
    order = np.random.default_rng(seed).permutation(n_users)
    cut = int(round(n_users * (1 - heldout_share)))
    return np.sort(order[:cut]), np.sort(order[cut:])


def evaluate_agents(
    agents: Mapping[str, Agent],
    factory: SessionFactory,
    world: World,
    users: np.ndarray,
    seed: int,
    n_boot: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, SessionStats]]:
    """Every agent on the same sessions (same users, same simulator seed), compared with greedy."""
    stats = run_sessions(agents, factory, world, users, seed)
    return compare(stats, "greedy", n_boot=n_boot, seed=seed), stats


def run_sessions(
    agents: Mapping[str, Agent], factory: SessionFactory, world: World, users: np.ndarray, seed: int
) -> dict[str, SessionStats]:
    """Every agent's sessions for ``users`` from the same simulator seed, in groups of at most
    :data:`~mtrec_helpers.rl.env.SESSION_BATCH`."""
    runs: dict[str, list[SessionStats]] = {name: [] for name in agents}
    groups = reusing_heap(session_groups(users, seed))  # groups outside: each group's start is scored once
    for group, group_seed in groups:
        for name, agent in agents.items():
            runs[name].append(simulate(agent, factory(group, group_seed), world.genres, world.popularity))
    return {name: SessionStats.joined(parts) for name, parts in runs.items()}


def replay(
    agent: Agent,
    factory: SessionFactory,
    user: int,
    seed: int,
    titles: Mapping[int, str],
    genre_names: list[str],
) -> list[dict[str, Any]]:
    """One session step by step: slate titles, the choice, the reward and the user's fatigue."""
    sessions = factory(np.array([user]), seed)
    agent.start(sessions)
    steps, step = [], 0
    while sessions.active.any():
        slate = sessions.candidates.gather(1, agent(sessions, step))[0]
        fatigue = sessions.fatigue[0].clone()
        outcome = sessions.step(slate[None, :])
        agent.observe(outcome)
        steps.append(
            {
                "step": step + 1,
                "slate": [titles.get(int(i), str(int(i))) for i in slate],
                "clicked": titles.get(int(outcome["item"][0]), "—")
                if bool(outcome["click"][0])
                else "no click",
                "reward": float(outcome["reward"][0]),
                "most tired of": [genre_names[int(g)] for g in torch.topk(fatigue, 2).indices]
                if fatigue.any()
                else [],
                "left": bool(outcome["done"][0]),
            }
        )
        step += 1
    return steps
