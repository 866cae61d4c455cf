"""Calibrating the simulated user: the attraction scale is recovered from choices it generated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_rl_env import _sessions, world  # noqa: F401  (shared fixture)

from mtrec_helpers.rl.calibration import (
    calibrate,
    choice_log_likelihood,
    choices,
    fit_attraction_scale,
    log_likelihood,
    masked,
    mean_log_likelihoods,
    rating_calibration,
    uniform_log_likelihood,
)
from mtrec_helpers.rl.env import SimulatorConfig
from mtrec_helpers.rl.user_model import HeldOut, held_out_fit


def _choices_at_scale(world, scale: float, repeats: int = 10) -> HeldOut:  # noqa: F811
    """Held-out 'next items' drawn from the logit model itself at a known scale."""
    data, model, histories, _ = world
    users = torch.arange(data.n_users).repeat(repeats)
    seen = histories[users]
    items_seen = [torch.nonzero(row).flatten().numpy() for row in seen]
    held = HeldOut(users, torch.zeros_like(users), np.zeros(len(users)), items_seen, seen.shape[1])
    _, _, candidates = next(held.batches(len(users)))
    logits = (scale * model.attraction(seen.float())).masked_fill(~candidates, -torch.inf)
    held.items = torch.multinomial(torch.softmax(logits, 1), 1, generator=torch.Generator().manual_seed(0))[
        :, 0
    ]
    return held


@pytest.mark.parametrize("scale", [0.7, 2.0])
def test_fitted_scale_recovers_the_scale_that_generated_the_choices(world, scale: float) -> None:  # noqa: F811
    held = _choices_at_scale(world, scale)
    fitted = fit_attraction_scale(world[1], held)
    assert fitted == pytest.approx(scale, rel=0.12)
    best = choice_log_likelihood(world[1], held, fitted)
    assert best >= choice_log_likelihood(world[1], held, fitted * 1.3)
    assert best >= choice_log_likelihood(world[1], held, fitted / 1.3)
    assert choice_log_likelihood(world[1], held, 0.0) == pytest.approx(uniform_log_likelihood(held), abs=1e-5)


def test_scale_zero_makes_every_valid_slate_item_equally_likely(world) -> None:  # noqa: F811
    config = SimulatorConfig(slate_size=4, n_candidates=10, attraction_scale=0.0, fatigue_weight=0.0)
    sessions = _sessions(world, config, np.arange(5))
    probabilities = sessions.choice_probabilities(sessions.candidates[:, :4])
    torch.testing.assert_close(probabilities[:, :4], probabilities[:, :1].expand(-1, 4))


def test_calibration_on_real_held_out_splits(world) -> None:  # noqa: F811
    data, model, _, _ = world
    report = calibrate(model, data)
    assert report["choice_loglik_test"] > report["choice_loglik_test_uniform"]  # beats picking at random
    assert (
        report["choice_loglik_valid"] >= choice_log_likelihood(model, HeldOut.of(data, "valid"), 1.0) - 1e-6
    )
    table = rating_calibration(model, HeldOut.of(data, "test"), bins=4)
    assert table["n"].sum() == data.n_users and table["predicted"].is_monotonic_increasing
    sample = np.arange(0, data.n_users, 3)  # the held-out fit comes from the calibration's own passes
    fit = calibrate(model, data, sample)["fit"]
    assert fit["valid"] == held_out_fit(model, data, "valid", sample)
    assert fit["test"] == held_out_fit(model, data)


def test_held_out_scores_do_not_depend_on_the_batch_size(world, monkeypatch) -> None:  # noqa: F811
    """Users are scored over the catalogue a batch at a time (memory: batch × catalogue, never
    users × catalogue); the likelihood and the click AUC are the same for any batch size."""
    from mtrec_helpers.rl import user_model

    data, model, _, _ = world
    held = HeldOut.of(data, "test")
    whole = choice_log_likelihood(model, held, 1.3), user_model.held_out_fit(model, data)["click_auc"]
    monkeypatch.setattr(user_model, "HELD_OUT_BATCH", 7)
    parts = choice_log_likelihood(model, held, 1.3), user_model.held_out_fit(model, data)["click_auc"]
    assert parts == pytest.approx(whole, rel=1e-6)
    assert sum(1 for _ in held.batches()) == -(-data.n_users // 7)
    with pytest.raises(ValueError, match="split"):
        HeldOut.of(data, "train")


def test_calibration_fits_on_a_validation_sample_and_checks_on_every_test_user(world) -> None:  # noqa: F811
    data, model, _, _ = world
    sample = np.arange(0, data.n_users, 3)
    held = HeldOut.of(data, "valid", sample)
    assert held.users.tolist() == sample.tolist() and len(held.histories) == len(sample)
    full = HeldOut.of(data, "valid")
    assert all(np.array_equal(held.histories[i], full.histories[u]) for i, u in enumerate(sample))
    several = mean_log_likelihoods(choices(model, held), held, [0.5, 1.3])
    assert several == [choice_log_likelihood(model, held, 0.5), choice_log_likelihood(model, held, 1.3)]
    report = calibrate(model, data, sample)
    assert report["attraction_scale"] == fit_attraction_scale(model, held)
    assert report["choice_loglik_valid"] == choice_log_likelihood(model, held, report["attraction_scale"])
    test = HeldOut.of(data, "test")
    assert report["choice_loglik_test_scale1"] == choice_log_likelihood(model, test, 1.0)


def test_the_search_evaluates_half_as_often_and_lands_on_the_same_bits(world, monkeypatch) -> None:  # noqa: F811
    from mtrec_helpers.rl import calibration

    held = _choices_at_scale(world, 1.5, repeats=2)
    cached = list(choices(world[1], held))
    kept = list(masked(cached))
    assert all(torch.equal(values, attraction.masked_fill(~candidates, -torch.inf))
               for (_, values), (_, attraction, candidates) in zip(kept, cached, strict=True))  # fmt: skip
    ratio, a, b = (5**0.5 - 1) / 2, 0.0, 5.0
    for _ in range(40):  # the search as it was: both points evaluated every round
        left, right = b - ratio * (b - a), a + ratio * (b - a)
        if mean_log_likelihoods(cached, held, [left])[0] < mean_log_likelihoods(cached, held, [right])[0]:
            a = left
        else:
            b = right
    calls: list[int] = []

    def counted(*args):
        calls.append(1)
        return log_likelihood(*args)

    monkeypatch.setattr(calibration, "log_likelihood", counted)
    scale, value = calibration._fitted_scale(kept, held, 0.0, 5.0)
    assert scale == (a + b) / 2 and len(calls) <= 60  # 81 before (80 in the search, 1 for the value)
    assert value == mean_log_likelihoods(cached, held, [scale])[0]
