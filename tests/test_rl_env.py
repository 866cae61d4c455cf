"""The RL simulator: user model fit, choice model, fatigue, leaving, seeding, gymnasium compliance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from mtrec_helpers.core.evaluation import history_mask
from mtrec_helpers.data import SyntheticConfig, prepare_dataset
from mtrec_helpers.rl.env import SessionEnv, Sessions, SimulatorConfig
from mtrec_helpers.rl.retrieval import CandidateTable
from mtrec_helpers.rl.user_model import Incidence, fit_rating_model, fit_user_model, held_out_fit, ridge_rows

SYNTHETIC = SyntheticConfig(n_users=200, n_items=80, min_length=10, max_length=30)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    data = prepare_dataset(
        "synthetic", tmp_path_factory.mktemp("rl"), min_interactions=3, synthetic=SYNTHETIC
    )
    model = fit_user_model(data, l2=50.0, dim=8)
    histories = history_mask(data.sequences("test"), data.n_items + 2, torch.device("cpu"))
    genres = torch.from_numpy(data.genre_matrix())
    return data, model, histories, genres


def _popular_unseen(n: int):
    def candidates(users: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        scores = -torch.arange(history.shape[1], dtype=torch.float32).expand(len(users), -1).clone()
        scores[:, [0, -1]] = -torch.inf
        scores[history > 0] = -torch.inf
        top = torch.topk(scores, n, dim=1)
        return top.indices, top.values

    return candidates


def _sessions(world, config: SimulatorConfig, users: np.ndarray, seed: int = 0) -> Sessions:
    data, model, histories, genres = world
    return Sessions(model, config, genres, torch.from_numpy(users), histories[users],
                    _popular_unseen(config.n_candidates), torch.Generator().manual_seed(seed))  # fmt: skip


def test_rating_model_recovers_a_planted_low_rank_matrix() -> None:
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(60, 3)), rng.normal(size=(40, 3))
    users, items = np.divmod(rng.choice(60 * 40, 1500, replace=False), 40)
    ratings = 3.0 + 0.3 * (users % 2) + (p[users] * q[items]).sum(1)
    model = fit_rating_model(users, items, ratings, (60, 40), dim=3, reg=0.1, sweeps=40)
    held = np.setdiff1d(np.arange(60 * 40), users * 40 + items)[:300]
    hu, hi = np.divmod(held, 40)
    truth = 3.0 + 0.3 * (hu % 2) + (p[hu] * q[hi]).sum(1)
    predicted = model.predict(torch.from_numpy(hu), torch.from_numpy(hi)).numpy()
    assert np.sqrt(np.mean((predicted - truth) ** 2)) < 0.2 * truth.std()


def test_ridge_rows_solves_each_rows_regression() -> None:
    rng = np.random.default_rng(1)
    rows, columns = rng.integers(0, 7, 200), rng.integers(0, 5, 200)  # repeated pairs; row 6 may be empty
    rows[rows == 6] = 5
    features, targets = rng.normal(size=(5, 3)), rng.normal(size=200)
    solved = ridge_rows(Incidence.of(rows, columns, (7, 5)), features, targets, reg=0.5)
    for row in range(7):
        x, y = features[columns[rows == row]], targets[rows == row]
        expected = np.linalg.solve(x.T @ x + 0.5 * np.eye(3), x.T @ y)
        np.testing.assert_allclose(solved[row], expected, rtol=1e-10, atol=1e-12)
    assert not solved[6].any()  # a row with no ratings keeps w = 0


def test_user_model_predicts_held_out_interactions(world) -> None:
    data, model, _, _ = world
    fit = held_out_fit(model, data, "test")
    assert fit["click_auc"] > 0.7  # the held-out item beats a random unseen one
    frame = data.interactions
    train_mean = frame.loc[frame["split"] == "train", "rating"].mean()
    test = frame.loc[frame["split"] == "test", "rating"]
    assert fit["rating_rmse"] < np.sqrt(((test - train_mean) ** 2).mean())  # beats the global mean


def test_choice_probabilities(world) -> None:
    sessions = _sessions(world, SimulatorConfig(slate_size=4, n_candidates=10), np.arange(6))
    slates = sessions.candidates[:, :4].clone()
    slates[:, 3] = slates[:, 0]  # a repeated item can be picked only once
    seen = sessions.history[0].nonzero()[0, 0]
    slates[0, 2] = seen  # an item from the history is never picked
    probabilities = sessions.choice_probabilities(slates)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(6))
    assert (probabilities[:, 3] == 0).all() and probabilities[0, 2] == 0
    better = sessions.attraction_at(slates[:, :2])
    order = better[:, 0] > better[:, 1]
    assert ((probabilities[:, 0] > probabilities[:, 1]) == order).all()


def test_fatigue_lowers_the_choice_of_a_tired_genre(world) -> None:
    sessions = _sessions(world, SimulatorConfig(fatigue_weight=2.0), np.arange(5))
    slates = sessions.candidates[:, :5]
    fresh = sessions.choice_probabilities(slates)
    sessions.fatigue[:] = 1.0
    tired = sessions.choice_probabilities(slates)
    assert (tired[:, -1] > fresh[:, -1]).all()  # more likely to click nothing


def test_session_ends_by_leaving_or_at_the_horizon(world) -> None:
    always_leave = _sessions(world, SimulatorConfig(leave_base=1.0), np.arange(8))
    outcome = always_leave.step(always_leave.candidates[:, :5])
    assert outcome["done"].all() and not always_leave.active.any()
    staying = _sessions(world, SimulatorConfig(leave_base=0.0, leave_slope=0.0, horizon=3), np.arange(8))
    for step in range(3):
        outcome = staying.step(staying.candidates[:, :5])
        assert outcome["done"].all() == (step == 2)
        clicked = outcome["click"]
        assert (outcome["reward"][~clicked] == 0).all() and (outcome["reward"][clicked] > 0).all()
        assert (staying.history[clicked, outcome["item"][clicked]] == 1).all()


def test_same_seed_same_sessions(world) -> None:
    def returns(seed: int) -> torch.Tensor:
        sessions = _sessions(world, SimulatorConfig(), np.arange(50), seed=seed)
        total = torch.zeros(50)
        while sessions.active.any():
            total += sessions.step(sessions.candidates[:, :5])["reward"]
        return total

    assert torch.equal(returns(1), returns(1)) and not torch.equal(returns(1), returns(2))


def test_gymnasium_env_checker_passes(world) -> None:
    data, model, histories, genres = world
    config = SimulatorConfig(n_candidates=10, slate_size=3, horizon=5)
    env = SessionEnv(model, config, genres, np.arange(data.n_users), histories, _popular_unseen(10))
    check_env(env, skip_render_check=True)
    first, _ = env.reset(seed=3)
    again, _ = env.reset(seed=3)
    assert np.array_equal(first["candidates"], again["candidates"])
    _, reward, terminated, truncated, info = env.step(np.array([0, 1, 2]))
    assert reward >= 0 and isinstance(terminated, bool) and isinstance(truncated, bool) and "click" in info
    items, scores = _popular_unseen(10)(torch.arange(data.n_users), histories)  # fixed per session
    table = CandidateTable(items, scores, torch.zeros_like(scores), torch.zeros_like(scores))
    env = SessionEnv(model, config, genres, np.arange(data.n_users), histories, table.lookup)
    env.reset(seed=0)
    clicks = 0
    for _ in range(50):  # clicked candidates (score −inf) keep the observation inside its space
        observation, _, terminated, truncated, info = env.step(np.array([0, 1, 2]))
        clicks += info["click"]
        assert env.observation_space.contains(observation)
        if terminated or truncated:
            env.reset()
    assert clicks > 0


def test_attraction_is_read_where_needed_and_a_shared_start_changes_nothing(world) -> None:
    from mtrec_helpers.rl.env import SessionStart
    from mtrec_helpers.rl.user_model import standardise

    data, model, histories, genres = world
    users = np.arange(40)
    config = SimulatorConfig(leave_base=0.0, leave_slope=0.0, horizon=6)
    fresh = _sessions(world, config, users, seed=4)
    start = SessionStart.of(model, histories[users])
    shared = Sessions(model, config, genres, torch.from_numpy(users), start.copy(),
                      _popular_unseen(config.n_candidates), torch.Generator().manual_seed(4))  # fmt: skip
    for _ in range(6):
        slates = fresh.candidates[:, :5]
        whole = standardise(fresh.raw_scores)  # the catalogue-wide definition the simulator had
        assert torch.equal(fresh.attraction_at(slates), whole.gather(1, slates))
        recomputed = standardise(model.scores(fresh.history.float())).gather(1, slates)
        torch.testing.assert_close(fresh.attraction_at(slates), recomputed)  # raw kept by adding rows
        first, second = fresh.step(slates), shared.step(shared.candidates[:, :5])
        assert all(torch.equal(first[key], second[key]) for key in first)
    assert fresh.history.sum() > histories[users].sum()  # clicks happened and moved the attraction
    untouched = SessionStart.of(model, histories[users]).raw_scores
    assert torch.equal(start.raw_scores, untouched)  # the sessions ran on a copy


def test_a_head_fitted_user_model_keeps_scores_on_its_head_with_the_catalogues_attraction(world) -> None:
    from mtrec_helpers.rl.user_model import standardise

    data, _, histories, genres = world
    head = fit_user_model(data, l2=50.0, dim=8, max_items=30)  # EASE on the 30 most popular of 80 items
    assert head.ease.items is not None and len(head.ease.items) == 30
    users = np.arange(60)
    config = SimulatorConfig(leave_base=0.0, leave_slope=0.0, horizon=8, n_candidates=40)
    sessions = Sessions(head, config, genres, torch.from_numpy(users), histories[users],
                        _popular_unseen(config.n_candidates), torch.Generator().manual_seed(3))  # fmt: skip
    assert sessions.raw_scores.shape == (60, 30)  # the head's columns only, not the catalogue's 82
    everything = torch.arange(data.n_items + 2).expand(len(users), -1)
    clicked_outside = clicked_inside = 0
    for _ in range(8):
        whole = standardise(head.scores(sessions.history.float()))  # over the catalogue, zeros included
        torch.testing.assert_close(sessions.attraction_at(everything), whole, rtol=1e-5, atol=1e-5)
        outcome = sessions.step(sessions.candidates[:, :5])
        inside = head.ease.position[outcome["item"]] >= 0
        clicked_inside += int((outcome["click"] & inside).sum())
        clicked_outside += int((outcome["click"] & ~inside).sum())
    assert clicked_inside > 0 and clicked_outside > 0  # both kinds of click moved the state
