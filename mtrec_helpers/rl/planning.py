"""When planning pays: the learners against the best myopic policy as a long-horizon mechanism grows.

The simulated session has a time budget (``SimulatorConfig.horizon_strength``, see ``rl.env``): at
strength 0 the session lasts the horizon whatever the user thinks of the films; at strength s every
click moves the budget by s · (satisfaction − typical satisfaction), so an attractive film the user
dislikes shortens the session. A myopic policy — even the *myopic oracle*, which reads the
simulator's user model and shows the slate of maximal expected next reward (``rl.oracle``) — cannot
see that cost; a learner that plans over the session can.

The sweep trains every learner anew at each strength (on the tuning users, in the tuning simulator)
and evaluates it with greedy, the myopic re-ranker by the like head and the oracle on the held-out
users in both simulators, for several training seeds. Per session the returns are averaged over the
seeds; each learner's difference to each of :data:`REFERENCES` is paired over those sessions
(bootstrap 95% interval), and the per-seed means show how much of it is one lucky run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from mtrec_helpers.core.evaluation import paired_bootstrap
from mtrec_helpers.core.workers import side_by_side
from mtrec_helpers.rl.agents import Agent, LearnedAgent, Reinforce, train_reinforce
from mtrec_helpers.rl.env import SimulatorConfig
from mtrec_helpers.rl.experiments import World, run_sessions, session_factory
from mtrec_helpers.rl.offpolicy import log_sessions, train_from_logs
from mtrec_helpers.rl.settings import RLSettings
from mtrec_helpers.rl.slateq import SlateQ, SlateQAgent, train_slateq
from mtrec_helpers.rl.user_model import UserModel

MYOPIC = "myopic_oracle"
LEARNERS = ("reinforce", "slateq", "reinforce_offpolicy")  # what learners_for trains, in this order
PLAUSIBLE_STRENGTH = 8.0
"""The strength the chapter argues for: a film rated 1 star costs about 8 × 0.63 ≈ 5 of 20 steps of
budget (two very disappointing picks end an evening), a 5-star film buys about 3. An assumption —
MovieLens records ratings, not how long anyone kept watching."""
REFERENCES = (MYOPIC, "by_like", "greedy")
"""Every learner is compared with each: the best myopic policy (it knows the user model), the myopic
re-ranker with the learner's own information (the like head), and the recommender's own ranking."""
Learners = Callable[[Callable, int], dict[str, Agent]]
"""(a session factory of the tuning simulator, a seed) → freshly trained learners by name."""


def train_learners(
    factory: Callable, seed: int, settings: RLSettings, world: World, train_users: np.ndarray
) -> dict[str, Agent]:
    """The chapter's three learners — REINFORCE on its own sessions, SlateQ, and REINFORCE from the
    softened greedy logger's sessions with the top-K correction — trained with ``settings`` and ``seed``
    in the simulator ``factory`` starts."""
    table, genres, k = world.table, world.genres, settings.slate_size
    network = Reinforce(settings.reinforce(seed))
    train_reinforce(network, factory, table, genres, train_users, k)
    slateq = SlateQAgent(k, SlateQ(settings.slateq(seed)), table, genres)
    train_slateq(slateq, factory, train_users)
    logs = log_sessions(factory, table, genres, train_users, k, settings.gamma, settings.offpolicy(seed))
    offline, _ = train_from_logs(logs, k, settings.reinforce(seed), settings.offpolicy(seed))
    return {
        "reinforce": LearnedAgent(k, network, table, genres),
        "slateq": slateq,
        "reinforce_offpolicy": LearnedAgent(k, offline, table, genres),
    }


def learners_for(settings: RLSettings, world: World, train_users: np.ndarray) -> Learners:
    """:func:`train_learners` with the chapter's ``settings``, as the sweep's :data:`Learners`
    (picklable, so the sweep's points can train in worker processes)."""
    return functools.partial(train_learners, settings=settings, world=world, train_users=train_users)


Returns = Mapping[str, Mapping[str, np.ndarray]]
"""Per-session returns by simulator and agent (one point of the sweep)."""


def point_returns(
    point: tuple[float, int],
    simulators: Mapping[str, tuple[UserModel, SimulatorConfig]],
    learners: Learners,
    references: Mapping[str, Agent],
    world: World,
    users: np.ndarray,
    eval_seed: int,
    trained: Mapping[tuple[float, int], Mapping[str, Agent]],
    measured: Mapping[tuple[float, int], Returns] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """One (strength, training seed) of the sweep: the learners trained at that strength in the tuning
    simulator (or those ``trained`` at that point), then every agent's per-session returns in each
    simulator from evaluation seed ``eval_seed`` — those ``measured`` at that point (on the same
    users and seed: the chapter's own evaluation) are taken as they are, not simulated again."""
    strength, seed = point
    factories = {name: session_factory(world, model, replace(config, horizon_strength=strength))
                 for name, (model, config) in simulators.items()}  # fmt: skip
    done = trained.get(point)
    agents = {**references, **(done if done is not None else learners(factories["tuning"], seed))}
    known = (measured or {}).get(point, {})
    returns: dict[str, dict[str, np.ndarray]] = {}
    for name, factory in factories.items():
        have = known.get(name, {})
        missing = {agent: policy for agent, policy in agents.items() if agent not in have}
        ran = run_sessions(missing, factory, world, users, eval_seed) if missing else {}
        returns[name] = {agent: have[agent] if agent in have else ran[agent].returns for agent in agents}
    return returns


def sweep(
    strengths: Sequence[float],
    seeds: Sequence[int],
    simulators: Mapping[str, tuple[UserModel, SimulatorConfig]],
    learners: Learners,
    references: Mapping[str, Agent],
    world: World,
    users: np.ndarray,
    n_boot: int,
    eval_seed: int,
    trained: Mapping[tuple[float, int], Mapping[str, Agent]] | None = None,
    workers: int = 1,
    measured: Mapping[tuple[float, int], Returns] | None = None,
) -> list[dict[str, Any]]:
    """One record per strength: per simulator (``simulators``: name → user model and configuration,
    ``"tuning"`` first, where the learners train), every agent's return averaged over ``seeds`` and
    its paired difference to each of :data:`REFERENCES` (see the module docstring). ``trained``:
    learners already trained at (strength, seed) — the chapter's own — used instead of retraining.
    Seed k of ``seeds`` is evaluated on the sessions of seed ``eval_seed + seeds[k] − seeds[0]``, so
    the first seed's point at the chapter's strength is the chapter's own evaluation; ``measured``:
    per-session returns already simulated at a point (by simulator and agent), used as they are.
    The (strength, seed) points are independent — each trains and evaluates from its own seeds, and
    the references hold no state between sessions — so with ``workers`` > 1 they run side by side in
    worker processes (:func:`~mtrec_helpers.core.workers.side_by_side`), with the same results."""
    points = [(float(strength), seed) for strength in strengths for seed in seeds]
    one = functools.partial(_point, simulators=simulators, learners=learners, references=references,
                            world=world, users=users, trained=dict(trained or {}),
                            measured=dict(measured or {}))  # fmt: skip
    finished = side_by_side(one, [(point, eval_seed + point[1] - seeds[0]) for point in points], workers)
    records = []
    for strength in strengths:
        returns: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in simulators}
        for seed in seeds:
            for name, by_agent in finished[points.index((float(strength), seed))].items():
                for agent, values in by_agent.items():
                    returns[name].setdefault(agent, []).append(values)
        summaries = {name: summarise(runs, n_boot, eval_seed) for name, runs in returns.items()}
        records.append({"strength": float(strength), "seeds": list(seeds), **summaries})
    return records


def _point(job: tuple[tuple[float, int], int], **shared: Any) -> dict[str, dict[str, np.ndarray]]:
    """:func:`point_returns` of one (point, evaluation seed) job of :func:`sweep`."""
    point, eval_seed = job
    return point_returns(point, eval_seed=eval_seed, **shared)


def summarise(runs: Mapping[str, list[np.ndarray]], n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """Per agent: mean return (per session averaged over the seeds), each seed's mean, and the paired
    difference to every reference present, absolute and in % of the reference's mean."""
    sessions = {name: np.mean(np.stack(per_seed), axis=0) for name, per_seed in runs.items()}
    record: dict[str, dict[str, Any]] = {}
    for name, values in sessions.items():
        row: dict[str, Any] = {"return_mean": float(values.mean()),
                               "return_by_seed": [float(r.mean()) for r in runs[name]]}  # fmt: skip
        for reference in REFERENCES:
            if reference in sessions and reference != name:
                paired = paired_bootstrap(values, sessions[reference], n_boot=n_boot, seed=seed)
                base = float(sessions[reference].mean())
                row[f"diff_vs_{reference}"], row[f"diff_vs_{reference}_ci"] = paired.diff, list(paired.ci)
                row[f"gain_vs_{reference}_pct"] = 100.0 * paired.diff / base
                row[f"gain_vs_{reference}_pct_ci"] = [100.0 * bound / base for bound in paired.ci]
        record[name] = row
    return record


def best_learner(point: Mapping[str, Any], learners: Sequence[str], simulator: str = "tuning") -> str:
    """The learner with the highest mean return in ``simulator`` at one strength (chosen on tuning)."""
    return max(learners, key=lambda name: point[simulator][name]["return_mean"])


def seeds_of(seed: int, count: int) -> list[int]:
    """``count`` training seeds from the chapter's ``SEED``."""
    return [seed + 100 * k for k in range(count)]
