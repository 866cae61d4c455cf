"""Chapter 04's planning questions: the myopic oracle is the exact best slate for the next step, the
time budget moves with satisfaction, and off-policy estimates are checked against the simulator."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
from test_rl_env import _sessions, world  # noqa: F401
from test_rl_policies import _planted

from mtrec_helpers.rl.agents import ByFeature, Greedy, Random
from mtrec_helpers.rl.env import SimulatorConfig
from mtrec_helpers.rl.experiments import World, run_sessions, session_factory
from mtrec_helpers.rl.offpolicy import behaviour_logits
from mtrec_helpers.rl.ope import first_slates, fit_reward_model, log_first_slates, off_policy_evaluation
from mtrec_helpers.rl.oracle import MyopicOracle, PlanningOracle, best_slate, expected_reward, slate_values
from mtrec_helpers.rl.planning import MYOPIC, sweep


def test_dinkelbach_finds_the_slate_of_maximal_expected_reward_by_brute_force() -> None:
    generator = torch.Generator().manual_seed(0)
    weights = torch.rand(40, 9, generator=generator) * 3
    rewards = torch.rand(40, 9, generator=generator)
    allowed = torch.rand(40, 9, generator=generator) > 0.2
    allowed[:, :4] = True  # at least K pickable
    slate = best_slate(weights, rewards, 3, allowed)
    found = expected_reward(weights, rewards, slate)
    for row in range(40):
        options = [c for c in itertools.combinations(range(9), 3) if allowed[row, list(c)].all()]
        best = max(float(expected_reward(weights[row : row + 1], rewards[row : row + 1], torch.tensor([c])))
                   for c in options)  # fmt: skip
        assert abs(float(found[row]) - best) < 1e-6
        assert allowed[row, slate[row]].all()
    # not simply the K best rewards: a likely, good-enough item can beat an unlikely, perfect one
    w, r = torch.tensor([[0.01, 5.0, 5.0, 5.0]]), torch.tensor([[1.0, 0.6, 0.6, 0.6]])
    assert set(best_slate(w, r, 1, torch.ones(1, 4, dtype=torch.bool))[0].tolist()) != {0}


def test_the_oracle_earns_the_most_immediate_reward_of_any_slate(world) -> None:  # noqa: F811
    sessions = _sessions(
        world, SimulatorConfig(slate_size=3, n_candidates=8, fatigue_weight=1.0), np.arange(20)
    )
    sessions.fatigue[:] = torch.rand(sessions.fatigue.shape, generator=torch.Generator().manual_seed(1))
    positions = MyopicOracle(3)(sessions, 0)
    slates = sessions.candidates.gather(1, positions)
    probabilities = sessions.choice_probabilities(slates)[:, :-1]
    satisfaction = sessions.model.satisfaction(sessions.users[:, None], slates)
    value = (probabilities * satisfaction).sum(1)  # the simulator's own expected reward of the slate
    weights, rewards = slate_values(sessions)
    torch.testing.assert_close(value, expected_reward(weights, rewards, positions))
    for other in itertools.combinations(range(8), 3):
        shown = sessions.candidates[:, list(other)]
        other_value = (sessions.choice_probabilities(shown)[:, :-1]
                       * sessions.model.satisfaction(sessions.users[:, None], shown)).sum(1)  # fmt: skip
        assert (other_value <= value + 1e-6).all()


def test_the_time_budget_is_the_horizon_at_strength_zero_and_moves_with_satisfaction(world) -> None:  # noqa: F811
    calm = SimulatorConfig(leave_base=0.0, leave_slope=0.0, horizon=4, no_click_utility=-5.0)  # always clicks
    plain = _sessions(world, calm, np.arange(30))
    for step in range(4):
        outcome = plain.step(plain.candidates[:, :5])
        assert outcome["done"].all() == (step == 3)  # today's environment: ends at the horizon
    strong = _sessions(world, dataclasses.replace(calm, horizon_strength=200.0), np.arange(30))
    typical = strong.model.typical_satisfaction
    outcome = strong.step(strong.candidates[:, :5])
    liked = outcome["reward"] > typical + 0.05
    disliked = outcome["reward"] < typical - 0.05
    assert liked.any() and disliked.any()
    assert outcome["done"][disliked].all()  # a disappointing film spends the evening
    assert (strong.budget[liked] > 4).all() and not outcome["done"][liked].any()  # an enjoyed one buys time
    for _ in range(3):
        outcome = strong.step(strong.candidates[:, :5])
    assert outcome["done"][liked].any() and not strong.active.any()  # but no session outlasts the horizon


def _logged(world, repeats: int = 10, temperature: float = 0.5):  # noqa: F811
    table, new_sessions, genres, _, n_users = _planted(world)
    users = np.tile(np.arange(n_users), repeats)
    return log_first_slates(
        new_sessions, users, 3, table, genres, 3, temperature, torch.Generator().manual_seed(4)
    ), table


def test_first_slates_are_logged_in_groups_of_sessions(world) -> None:  # noqa: F811
    table, new_sessions, genres, _, n_users = _planted(world)
    users = np.tile(np.arange(n_users), 3)

    def logged(group: int):
        return log_first_slates(
            new_sessions, users, 3, table, genres, 3, 0.5, torch.Generator().manual_seed(4), group
        )

    whole, alone = logged(len(users)), first_slates(new_sessions(users, 3), table, genres, 3, 0.5,
                                                    torch.Generator().manual_seed(4))  # fmt: skip
    assert all(torch.equal(getattr(whole, f.name), getattr(alone, f.name)) for f in dataclasses.fields(whole))
    parts = logged(n_users)  # three groups, each from its own simulator seed
    assert len(parts.reward) == len(users) and torch.equal(parts.features[:, :, 0], whole.features[:, :, 0])
    assert not torch.equal(parts.clicked, whole.clicked)  # the groups' sessions are drawn afresh


def test_the_logger_evaluated_on_its_own_logs_has_weight_one_and_is_covered(world) -> None:  # noqa: F811
    logs, _ = _logged(world)
    assert (logs.slates < logs.available.shape[1]).all() and logs.available.gather(1, logs.slates).all()
    logger = lambda f, a: behaviour_logits(f, a, 0.5)  # noqa: E731
    result = off_policy_evaluation(logs, {"logger": logger}, samples=8, n_boot=300, seed=0)["logger"]
    assert result["ess_share"] == pytest.approx(1.0)
    assert result["ips"] == pytest.approx(float(logs.reward.mean())) == result["snips"]
    assert result["ips_covers"] and result["dr_covers"] and result["snips_covers"]
    assert abs(result["dr_error"]) < 0.05


def test_importance_weights_are_unbiased_and_degrade_far_from_the_logger(world) -> None:  # noqa: F811
    logs, _ = _logged(world, repeats=20)
    near = lambda f, a: behaviour_logits(f, a, 0.7)  # noqa: E731
    far = lambda f, a: (-f[..., 0] / 0.3).masked_fill(~a, -torch.inf)  # noqa: E731  (the logger's least liked)
    results = off_policy_evaluation(logs, {"near": near, "far": far}, samples=8, n_boot=300, seed=0)
    assert results["near"]["ess_share"] > 0.2 > results["far"]["ess_share"]
    assert results["near"]["snips_covers"] and results["near"]["dr_covers"]
    assert abs(results["near"]["dr_error"]) < abs(results["far"]["ips_error"]) + 1e-9
    assert results["far"]["truth"] != results["near"]["truth"]


def test_the_reward_model_learns_the_click_and_the_reward(world) -> None:  # noqa: F811
    logs, _ = _logged(world, repeats=20)
    model = fit_reward_model(logs)
    fitted = model.value(logs.features, logs.slates)
    truth = expected_reward(logs.true_weights, logs.true_rewards, logs.slates)
    assert np.corrcoef(fitted.numpy(), truth.numpy())[0, 1] > 0.3
    assert abs(float(fitted.mean() - logs.reward.mean())) < 0.05


def test_the_reward_model_does_not_jump_when_the_features_move_by_rounding_noise(world) -> None:  # noqa: F811
    logs, _ = _logged(world, repeats=20)
    logs.features[..., -1] = 0.0  # a feature that never varies (a first slate's fatigue): rank-deficient
    base = fit_reward_model(logs)
    for seed in range(4):
        noise = torch.randn(logs.features.shape, generator=torch.Generator().manual_seed(seed))
        noise[..., logs.features.flatten(0, 1).std(0) == 0] = 0.0  # rounding noise keeps a constant constant
        moved = fit_reward_model(dataclasses.replace(logs, features=logs.features * (1 + 1e-6 * noise)))
        torch.testing.assert_close(moved.choice, base.choice, atol=1e-4, rtol=0)
        torch.testing.assert_close(moved.reward, base.reward, atol=1e-4, rtol=0)
    assert base.choice[-2] == 0 and base.reward[-2] == 0  # minimum norm: nothing on the constant feature


def test_dinkelbach_is_exact_when_every_reward_is_negative() -> None:
    generator = torch.Generator().manual_seed(1)
    weights, rewards = torch.rand(30, 7, generator=generator) * 3, -torch.rand(30, 7, generator=generator)
    allowed = torch.ones(30, 7, dtype=torch.bool)
    found = expected_reward(weights, rewards, best_slate(weights, rewards, 2, allowed))
    for row in range(30):
        best = max(float(expected_reward(weights[row : row + 1], rewards[row : row + 1], torch.tensor([c])))
                   for c in itertools.combinations(range(7), 2))  # fmt: skip
        assert abs(float(found[row]) - best) < 1e-6


def test_the_planning_oracle_prices_the_budget_and_is_the_myopic_one_at_strength_zero(world) -> None:  # noqa: F811
    config = SimulatorConfig(slate_size=3, n_candidates=10)
    sessions = _sessions(world, config, np.arange(40))
    assert torch.equal(PlanningOracle(3, 0.3)(sessions, 0), MyopicOracle(3)(sessions, 0))
    strong = _sessions(world, dataclasses.replace(config, horizon_strength=30.0), np.arange(40))
    planned, myopic = PlanningOracle(3, 0.3)(strong, 0), MyopicOracle(3)(strong, 0)
    satisfaction = strong.model.satisfaction(strong.users[:, None], strong.candidates)
    assert satisfaction.gather(1, planned).mean() > satisfaction.gather(1, myopic).mean()


def random_learner(factory, seed: int) -> dict:
    """A picklable learner whose choices depend on its seed and on every draw before (stateful)."""
    return {"learner": Random(3, torch.Generator().manual_seed(seed))}


def test_the_sweeps_points_side_by_side_give_the_same_records(world) -> None:  # noqa: F811
    data, model, _, _ = world
    table, *_, n_users = _planted(world)
    config = SimulatorConfig(n_candidates=20, slate_size=3, horizon=8)
    simulators = {
        "tuning": (model, config),
        "heldout": (model, dataclasses.replace(config, no_click_utility=0.0)),
    }
    references = {MYOPIC: MyopicOracle(3), "greedy": Greedy(3)}
    rl_world, users = World.build(data, table), np.arange(n_users)
    records = [
        sweep(
            [0.0, 30.0],
            [0, 100],
            simulators,
            random_learner,
            references,
            rl_world,
            users,
            200,
            1,
            trained={(0.0, 0): {"learner": Random(3, torch.Generator().manual_seed(5))}},  # fresh per run
            workers=workers,
        )  # fmt: skip
        for workers in (1, 2)
    ]
    assert records[0] == records[1]
    by_seed = [p[s]["learner"]["return_by_seed"] for p in records[0] for s in simulators]
    assert len({tuple(seeds) for seeds in by_seed}) == len(by_seed)  # the seeds and strengths do differ


def _sweep_world(world):  # noqa: F811
    """The planted table, two simulators (the held-out one without the no-click utility), the sweep's
    references, the world and the number of users."""
    data, model, _, _ = world
    table, *_, n_users = _planted(world)
    config = SimulatorConfig(n_candidates=20, slate_size=3, horizon=8)
    simulators = {
        "tuning": (model, config),
        "heldout": (model, dataclasses.replace(config, no_click_utility=0.0)),
    }
    return (
        table,
        simulators,
        {MYOPIC: MyopicOracle(3), "greedy": Greedy(3)},
        World.build(data, table),
        n_users,
    )


def test_the_sweep_averages_seeds_pairs_with_the_oracle_and_reuses_trained_learners(world) -> None:  # noqa: F811
    table, simulators, references, rl_world, n_users = _sweep_world(world)
    model, config = simulators["tuning"]
    trained_seeds = []

    def learners(factory, seed: int) -> dict:
        trained_seeds.append(seed)
        return {"learner": ByFeature(3, table, "like")}

    chapter = {"learner": Random(3, torch.Generator().manual_seed(0))}
    users = np.tile(np.arange(n_users), 2)
    points = sweep([0.0, 30.0], [0, 100], simulators, learners, references, rl_world, users, 300, 1,
                   trained={(0.0, 0): chapter})  # fmt: skip
    assert trained_seeds == [100, 0, 100]  # (strength 0, seed 0) was the chapter's own learner
    assert [p["strength"] for p in points] == [0.0, 30.0] and points[0]["seeds"] == [0, 100]
    for point in points:
        for simulator in simulators:
            rows = point[simulator]
            row = rows["learner"]
            assert row["return_mean"] == pytest.approx(np.mean(row["return_by_seed"]), rel=1e-5)
            low, high = row["diff_vs_myopic_oracle_ci"]
            assert low <= row["diff_vs_myopic_oracle"] <= high
            base = rows[MYOPIC]["return_mean"]
            gain = 100 * row["diff_vs_myopic_oracle"] / base
            assert row["gain_vs_myopic_oracle_pct"] == pytest.approx(gain)
            assert rows[MYOPIC]["return_mean"] > rows["greedy"]["return_mean"]  # greedy follows popularity
    # (strength 0, seed 0) is the chapter's random learner on the sessions of evaluation seed 1 + 0
    alone = {"learner": Random(3, torch.Generator().manual_seed(0))}
    stats = run_sessions(alone, session_factory(rl_world, model, config), rl_world, users, 1)
    assert points[0]["tuning"]["learner"]["return_by_seed"][0] == pytest.approx(
        float(stats["learner"].returns.mean())
    )
    # greedy shows popular films of planted quality unrelated to popularity: the budget cuts its sessions
    assert points[1]["tuning"]["greedy"]["return_mean"] < points[0]["tuning"]["greedy"]["return_mean"]


def test_the_sweep_takes_the_chapters_measured_returns_as_they_are_and_they_are_the_same(world) -> None:  # noqa: F811
    table, simulators, references, rl_world, n_users = _sweep_world(world)
    users = np.tile(np.arange(n_users), 2)
    chapter = {"learner": ByFeature(3, table, "like")}

    def run(seed: int, measured: dict | None) -> list:
        return sweep([0.0, 30.0], [seed, seed + 100], simulators, random_learner, references, rl_world, users,
                     300, seed + 1, trained={(0.0, seed): chapter}, measured=measured)  # fmt: skip

    for seed in (0, 7):  # the chapter's point is evaluated on the chapter's sessions (seed + 1) for any SEED
        factories = {name: session_factory(rl_world, m, c) for name, (m, c) in simulators.items()}
        stats = {name: run_sessions({**references, **chapter}, factory, rl_world, users, seed + 1)
                 for name, factory in factories.items()}  # fmt: skip
        measured = {(0.0, seed): {name: {a: run.returns for a, run in runs.items()}
                                  for name, runs in stats.items()}}  # fmt: skip
        assert run(seed, measured) == run(seed, None)
    # what is measured is used as it is: a marked copy shows up in the records, and nothing else moves
    marked = {(0.0, 0): {"tuning": {"greedy": np.zeros(len(users))}}}
    plain, taken = run(0, None), run(0, marked)
    (zero, other), (before, same) = (p[0]["tuning"]["greedy"]["return_by_seed"] for p in (taken, plain))
    assert zero == 0.0 < before and other == same
    assert taken[0]["heldout"] == plain[0]["heldout"] and taken[1] == plain[1]
