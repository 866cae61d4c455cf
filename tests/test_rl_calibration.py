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
    mean_log_likelihoods,
    rating_calibration,
    uniform_log_likelihood,
)
from mtrec_helpers.rl.env import SimulatorConfig
from mtrec_helpers.rl.user_model import HeldOut, fit_user_model, held_out_fit


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
    several = mean_log_likelihoods(choices(model, held), [0.5, 1.3])
    assert several == [choice_log_likelihood(model, held, 0.5), choice_log_likelihood(model, held, 1.3)]
    report = calibrate(model, data, sample)
    assert report["attraction_scale"] == fit_attraction_scale(model, held)
    assert report["choice_loglik_valid"] == choice_log_likelihood(model, held, report["attraction_scale"])
    test = HeldOut.of(data, "test")
    assert report["choice_loglik_test_scale1"] == choice_log_likelihood(model, test, 1.0)


def _by_definition(model, held: HeldOut, scale: float) -> float:
    """Mean log softmax over each user's whole unseen catalogue, written out as the definition."""
    parts = []
    for rows, seen, candidates in held.batches():
        logits = (scale * model.attraction(seen.float())).masked_fill(~candidates, -torch.inf)
        parts.append(torch.log_softmax(logits, dim=1)[torch.arange(len(logits)), held.items[rows]])
    return float(torch.cat(parts).mean())


def test_the_likelihood_is_its_definition_to_the_last_bit(world) -> None:  # noqa: F811
    data, model, _, _ = world
    held = HeldOut.of(data, "test")
    for scale in (0.0, 0.5, 1.3):
        assert choice_log_likelihood(model, held, scale) == _by_definition(model, held, scale)


def test_the_search_evaluates_half_as_often_and_lands_on_the_same_bits(world, monkeypatch) -> None:  # noqa: F811
    from mtrec_helpers.rl import calibration

    held = _choices_at_scale(world, 1.5, repeats=2)
    cached = list(choices(world[1], held))
    ratio, a, b = (5**0.5 - 1) / 2, 0.0, 5.0
    for _ in range(40):  # the search as it was: both points evaluated every round
        left, right = b - ratio * (b - a), a + ratio * (b - a)
        if _by_definition(world[1], held, left) < _by_definition(world[1], held, right):
            a = left
        else:
            b = right
    calls: list[int] = []

    def counted(*args):
        calls.append(1)
        return log_likelihood(*args)

    monkeypatch.setattr(calibration, "log_likelihood", counted)
    scale, value = calibration._fitted_scale(cached, 0.0, 5.0)
    assert scale == (a + b) / 2 and len(calls) <= 60  # 81 before (80 in the search, 1 for the value)
    assert value == _by_definition(world[1], held, scale)


def test_on_a_catalogues_head_the_choice_sets_hold_the_head_and_give_the_same_figures(world) -> None:  # noqa: F811
    from mtrec_helpers.rl.calibration import _fitted_scale

    data, _, _, _ = world
    model = fit_user_model(data, l2=50.0, dim=8, max_items=30)  # EASE on 30 of the 80 items
    for split in ("valid", "test"):
        held = HeldOut.of(data, split)
        head, every = list(choices(model, held)), list(choices(model, held, head=False))
        assert head[0].values.shape[1] == 30 and every[0].values.shape[1] == data.n_items + 2
        assert (head[0].column == 30).any() and (head[0].column < 30).any()  # held-out items in both parts
        for scale in (0.0, 0.7, 2.0):
            assert log_likelihood(head, scale) == pytest.approx(_by_definition(model, held, scale), rel=1e-5)
        aucs = torch.cat([batch.auc() for batch in head])
        torch.testing.assert_close(aucs, torch.cat([batch.auc() for batch in every]))
    report, sample = calibrate(model, data), HeldOut.of(data, "valid")
    full = list(choices(model, sample, head=False))
    reference, best = _fitted_scale(full, 0.0, 5.0)
    # Both searches find the same maximum: the likelihoods agree to float noise (rel. 1e-5 above), and
    # near a maximum that noise moves the golden-section search's answer first-order while the
    # likelihood there moves only second-order — so the scale agrees to 1e-3, its likelihood to 1e-6.
    assert report["attraction_scale"] == pytest.approx(reference, rel=1e-3)
    assert log_likelihood(full, report["attraction_scale"]) == pytest.approx(best, rel=1e-6)
    assert report["fit"]["test"] == pytest.approx(held_out_fit(model, data), rel=1e-6)
    assert report["choice_loglik_test"] == pytest.approx(
        _by_definition(model, HeldOut.of(data, "test"), report["attraction_scale"]), rel=1e-5
    )
