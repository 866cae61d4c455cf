"""The full-ranking evaluator against hand-computed cases, and the bootstrap statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtrec_helpers.core.comparison import evaluate_protocols
from mtrec_helpers.core.evaluation import (
    NonFiniteScores,
    RankingResult,
    bootstrap_ci,
    evaluate,
    history_mask,
    paired_bootstrap,
    rank_targets,
    validation_users,
)
from mtrec_helpers.data import SyntheticConfig, prepare_dataset

NEG = -1e9


def _rank(scores: list[float], target: int, history: list[int] | None = None) -> int:
    """Rank of ``target`` for one user; column 0 is PAD and the last column MASK."""
    tensor = torch.tensor([scores], dtype=torch.float32)
    histories = [np.array(history)] if history else None
    rank, _ = rank_targets(tensor, torch.tensor([target]), histories, top_k=3)
    return int(rank[0])


def _result(ranks: list[int], n_items: int = 100) -> RankingResult:
    return RankingResult(np.array(ranks), np.zeros((len(ranks), 20), dtype=int), n_items, "test", True)


def test_target_at_rank_one() -> None:
    rank = _rank([0.0, 5.0, 3.0, 1.0, 0.0], target=1)
    assert rank == 0
    result = _result([rank])
    assert result.hit_rate(1)[0] == 1 and result.ndcg(10)[0] == 1.0 and result.reciprocal_rank()[0] == 1.0


def test_target_beyond_k() -> None:
    scores = [0.0, *range(12, 0, -1), 0.0]  # items 1..12 scored 12..1
    rank = _rank(scores, target=12)
    assert rank == 11
    result = _result([rank])
    assert result.hit_rate(10)[0] == 0 and result.ndcg(10)[0] == 0
    assert result.hit_rate(20)[0] == 1 and result.ndcg(20)[0] == pytest.approx(1 / math.log2(13))
    assert result.reciprocal_rank()[0] == pytest.approx(1 / 12)


def test_ties_count_against_the_target() -> None:
    # item 1 scores 3; items 2, 3 (target) and 4 tie at 2; item 5 scores 1.
    rank = _rank([0.0, 3.0, 2.0, 2.0, 2.0, 1.0, 0.0], target=3)
    assert rank == 3  # one higher + two tied
    assert _result([rank]).ndcg(10)[0] == pytest.approx(1 / math.log2(5))
    assert _rank([0.0] * 7, target=2) == 4  # a constant scorer ranks the target last of 5 items


def test_excluded_history_item_that_outscores_the_target() -> None:
    scores = [0.0, 9.0, 5.0, 1.0, 0.0]
    assert _rank(scores, target=2) == 1
    assert _rank(scores, target=2, history=[1]) == 0


def test_target_seen_before_still_competes_and_pad_mask_never_do() -> None:
    assert _rank([0.0, 9.0, 5.0, 1.0, 0.0], target=1, history=[1, 3]) == 0
    assert _rank([100.0, 1.0, 5.0, 2.0, 100.0], target=2) == 0  # PAD and MASK score 100


def test_coverage_and_metric_names() -> None:
    result = RankingResult(np.array([0, 5]), np.array([[1, 2, 3], [1, 4, 5]]), 10, "test", True)
    assert result.coverage(2) == pytest.approx(3 / 10)
    assert result.per_user("hr@1").tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="unknown metric"):
        result.per_user("recall@10")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory):
    config = SyntheticConfig(n_users=50, n_items=60, min_length=6, max_length=12)
    return prepare_dataset("synthetic", tmp_path_factory.mktemp("eval"), min_interactions=3, synthetic=config)


def test_oracle_scores_every_target_first_in_any_batch_size(synthetic) -> None:
    targets = synthetic.targets("test")

    def oracle(users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        scores = torch.zeros((len(users), synthetic.n_items + 2))
        scores[torch.arange(len(users)), torch.from_numpy(targets[users])] = 1.0
        return scores

    for batch_size in (1, 7, 256):
        result = evaluate(oracle, synthetic, "test", batch_size=batch_size)
        assert result.ranks.tolist() == [0] * synthetic.n_users
        assert result.summary(n_boot=50)["ndcg@10"] == 1.0


def test_history_exclusion_switch(synthetic) -> None:
    histories = synthetic.sequences("valid")

    def history_lover(users: np.ndarray, batch: list[np.ndarray]) -> torch.Tensor:
        return history_mask(batch, synthetic.n_items + 2, torch.device("cpu")).float()

    excluded = evaluate(history_lover, synthetic, "test", exclude_history=True)
    included = evaluate(history_lover, synthetic, "test", exclude_history=False)
    assert (included.ranks >= np.array([len(np.unique(h)) for h in histories])).all()
    assert (excluded.ranks < included.ranks).all()


def test_bootstrap_interval_contains_mean_and_shrinks() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.random(100), rng.random(10_000)
    low, high = bootstrap_ci(small, n_boot=500)
    assert low < small.mean() < high
    large_low, large_high = bootstrap_ci(large, n_boot=500)
    assert (large_high - large_low) < (high - low) / 5


def test_paired_bootstrap() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(500)
    same = paired_bootstrap(base, base, n_boot=200)
    assert same.diff == 0 and same.ci == (0.0, 0.0) and not same.significant
    better = paired_bootstrap(base + 0.05 + 0.01 * rng.standard_normal(500), base, n_boot=200)
    assert better.significant and better.ci[0] > 0.04 and better.p_not_better == 0.0
    with pytest.raises(ValueError, match="same users"):
        paired_bootstrap(base, base[:10])


def test_validation_sample_is_every_user_up_to_the_limit_and_a_fixed_sample_beyond() -> None:
    assert validation_users(943).tolist() == list(range(943))  # ML-100k, ML-1M: every user
    assert validation_users(50, limit=0).tolist() == list(range(50))
    sample = validation_users(138_493, limit=10_000, seed=3)
    assert len(sample) == len(np.unique(sample)) == 10_000 and (np.diff(sample) > 0).all()
    assert sample.max() > 130_000 and sample.min() < 1_000  # spread over all users
    assert np.array_equal(sample, validation_users(138_493, limit=10_000, seed=3))
    assert not np.array_equal(sample, validation_users(138_493, limit=10_000, seed=4))


def test_both_protocols_from_one_scoring_pass_equal_two_evaluations(synthetic) -> None:
    calls = []

    def noisy(users: np.ndarray, batch: list[np.ndarray]) -> torch.Tensor:
        calls.append(len(users))
        generator = torch.Generator().manual_seed(int(users[0]))
        return torch.rand((len(users), synthetic.n_items + 2), generator=generator)

    excluded, included = evaluate_protocols({"noisy": noisy}, synthetic, "test")
    assert sum(calls) == synthetic.n_users  # every user scored once for both rankings
    for flag, result in ((True, excluded["noisy"]), (False, included["noisy"])):
        again = evaluate(noisy, synthetic, "test", exclude_history=flag)
        assert np.array_equal(result.ranks, again.ranks) and np.array_equal(result.top, again.top)
    assert (excluded["noisy"].ranks <= included["noisy"].ranks).all()
    assert (excluded["noisy"].ranks < included["noisy"].ranks).any()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_scores_are_refused_at_once(bad: float) -> None:
    """A NaN target score is outranked by nothing: it used to count as a hit, so a diverged model
    (LR=1e999) won early stopping with a validation NDCG@10 of inf. −inf (never recommend) is allowed."""
    scores = torch.randn(4, 8)
    scores[2, 5] = bad
    with pytest.raises(
        NonFiniteScores, match=r"1 of 4 users got NaN or \+inf scores \(first: row 2, column 5\)"
    ):
        rank_targets(scores, torch.tensor([1, 2, 3, 4]), None, top_k=3)
    scores[2, 5] = -float("inf")
    scores[:, [0, -1]] = bad  # PAD and MASK never compete: not checked
    rank, _ = rank_targets(scores, torch.tensor([1, 2, 3, 4]), None, top_k=3)
    assert (rank >= 0).all()
