"""Score normalisation, the three fusions, beyond-accuracy metrics and the RL re-ranker's scores,
checked by hand and on planted members whose usefulness is known."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mtrec_helpers.core.evaluation import evaluate
from mtrec_helpers.core.stages import ArtifactError
from mtrec_helpers.data import SyntheticConfig, prepare_dataset
from mtrec_helpers.ensemble.beyond_accuracy import coverage_interval, intra_list_diversity
from mtrec_helpers.ensemble.experiments import (
    WITHOUT,
    evaluation_pass,
    fit_fusions,
    fit_users,
    leave_one_out_table,
    validation_pass,
)
from mtrec_helpers.ensemble.fusion import (
    fit_softmax_fusion,
    ranks,
    reciprocal_rank_fusion,
    top_ranks,
    uniform,
    weighted_sum,
)
from mtrec_helpers.ensemble.members import Members, describe_student, load_members
from mtrec_helpers.ensemble.report import best_single, final_frame, model_record, paired_against
from mtrec_helpers.ensemble.scores import eligible_items, score_batches, zscore
from mtrec_helpers.multitask.tasks import TaskData
from mtrec_helpers.pretraining.baselines import fit_ease, fit_itemknn, fit_popularity
from mtrec_helpers.rl.agents import Reinforce, ReinforceConfig
from mtrec_helpers.rl.policy import first_slate_logits, load_policy, reranked_scores, save_policy
from mtrec_helpers.rl.retrieval import CandidateTable


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    return prepare_dataset(
        "synthetic", tmp_path_factory.mktemp("ensemble"), min_interactions=3,
        synthetic=SyntheticConfig(n_users=150, n_items=80, min_length=10, max_length=30),
    )  # fmt: skip


def test_eligible_items_exclude_history_and_special_ids_but_keep_the_target(data) -> None:
    eligible = eligible_items(data, "test")
    histories, targets = data.sequences("valid"), data.targets("test")
    assert eligible.shape == (data.n_users, data.n_items + 2)
    assert not eligible[:, 0].any() and not eligible[:, -1].any()
    for user in (0, 7, 42):
        seen = set(histories[user].tolist()) - {int(targets[user])}
        assert not eligible[user, sorted(seen)].any()
        assert eligible[user, int(targets[user])]
        assert int(eligible[user].sum()) == data.n_items - len(seen)


def test_zscore_standardises_each_row_over_eligible_items_only() -> None:
    scores = torch.tensor([[100.0, 1.0, 2.0, 3.0, -50.0], [0.0, 10.0, 10.0, 40.0, 0.0]])
    eligible = torch.tensor([[False, True, True, True, False], [False, True, True, True, False]])
    z = zscore(scores, eligible)
    assert z[:, [0, 4]].abs().max() == 0
    assert torch.allclose(z[0, 1:4], torch.tensor([-1.0, 0.0, 1.0]) * math.sqrt(1.5), atol=1e-5)
    assert torch.allclose(z[:, 1:4].mean(1), torch.zeros(2), atol=1e-6)
    assert torch.allclose((z[:, 1:4] ** 2).mean(1), torch.ones(2), atol=1e-5)
    assert torch.allclose(zscore(scores * 7 + 3, eligible), z, atol=1e-5)  # scale-free


def _planted(n_users: int = 300, n_items: int = 200, seed: int = 0):
    """Targets, and members: 'a' and 'b' each see the target half of the time, 'noise' never."""
    gen = torch.Generator().manual_seed(seed)
    targets = torch.randint(1, n_items + 1, (n_users,), generator=gen)
    eligible = torch.ones(n_users, n_items + 2, dtype=torch.bool)
    eligible[:, [0, -1]] = False
    rows = torch.arange(n_users)
    members = {}
    for name, users in {"a": rows < n_users // 2, "b": rows >= n_users // 2, "noise": rows < 0}.items():
        scores = torch.randn(n_users, n_items + 2, generator=gen)
        scores[rows[users], targets[users]] += 3.0
        members[name] = zscore(scores, eligible)
    return members, eligible, targets


def _ndcg10(scores: torch.Tensor, eligible: torch.Tensor, targets: torch.Tensor) -> float:
    rank = ranks(scores, eligible)[torch.arange(len(targets)), targets].float()
    return float(torch.where(rank < 10, 1.0 / torch.log2(rank + 2.0), torch.zeros(())).mean())


def test_softmax_fusion_weights_useful_members_and_beats_each_of_them() -> None:
    members, eligible, targets = _planted()
    fit = fit_softmax_fusion(members, eligible, targets)
    assert fit.valid_loss < fit.uniform_loss
    assert fit.shares["noise"] < 0.1 and fit.shares["a"] > 0.35 and fit.shares["b"] > 0.35
    assert sum(fit.shares.values()) == pytest.approx(1.0)
    fused = weighted_sum(members, fit.alphas)
    singles = {name: _ndcg10(scores, eligible, targets) for name, scores in members.items()}
    assert _ndcg10(fused, eligible, targets) > max(singles.values()) + 0.02
    assert _ndcg10(fused, eligible, targets) >= _ndcg10(uniform(members), eligible, targets)
    with pytest.raises(KeyError, match="absent"):
        weighted_sum(members, {"absent": 1.0})


def test_ranks_are_zero_based_positions_among_eligible_items() -> None:
    scores = torch.tensor([[0.0, 5.0, 1.0, 9.0, 3.0]])
    eligible = torch.tensor([[False, True, True, True, True]])
    assert ranks(scores, eligible)[0, 1:].tolist() == [1, 3, 0, 2]


def test_reciprocal_rank_fusion_by_hand_and_its_depth() -> None:
    eligible = torch.ones(1, 4, dtype=torch.bool)
    first = torch.tensor([[4.0, 3.0, 2.0, 1.0]])  # ranks 1, 2, 3, 4
    second = torch.tensor([[1.0, 4.0, 3.0, 2.0]])  # ranks 4, 1, 2, 3
    fused = reciprocal_rank_fusion({"x": first, "y": second}, eligible, k=60)
    expected = [1 / 61 + 1 / 64, 1 / 62 + 1 / 61, 1 / 63 + 1 / 62, 1 / 64 + 1 / 63]
    assert torch.allclose(fused[0], torch.tensor(expected))
    shallow = reciprocal_rank_fusion({"x": first, "y": second}, eligible, k=60, depth={"y": 1})
    assert torch.allclose(shallow[0], torch.tensor([1 / 61, 1 / 62 + 1 / 61, 1 / 63, 1 / 64]))


def test_top_ranks_are_the_full_rankings_head_ties_and_short_rows_included(monkeypatch) -> None:
    gen = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 6, (9, 50), generator=gen).float()  # few values: many ties
    scores[5:] = torch.randn(4, 50, generator=gen)  # no ties: top-k's own choice stands
    scores[8, 30:] = scores[8, 4]  # a tie across the cut in a row of otherwise distinct scores
    eligible = torch.rand(9, 50, generator=gen) > 0.3
    eligible[0] = False
    eligible[0, :4] = True  # fewer eligible items than the depth
    full = ranks(scores, eligible)
    items, rank = top_ranks(scores, eligible, 12)
    assert torch.equal(full.gather(1, items), rank)
    assert torch.equal(rank[1], torch.arange(12))
    truncated = reciprocal_rank_fusion({"x": scores, "y": -scores}, eligible, default_depth=12)
    whole = reciprocal_rank_fusion({"x": scores, "y": -scores}, eligible)
    in_head = ((full < 12) | (ranks(-scores, eligible) < 12)) & eligible
    assert torch.all(truncated[in_head] <= whole[in_head] + 1e-7) and torch.all(truncated[in_head] > 0)
    assert torch.all(truncated[~in_head] == 0)
    both = (full < 12) & (ranks(-scores, eligible) < 12) & eligible  # in both heads: nothing truncated
    assert torch.allclose(truncated[both], whole[both])
    from mtrec_helpers.ensemble import fusion

    by_top_k = reciprocal_rank_fusion({"x": scores, "y": -scores}, eligible, default_depth=5)  # 5 × 8 < 50
    monkeypatch.setattr(fusion, "TOP_K_SHARE", 100)  # the same depth through the whole sort
    by_sort = reciprocal_rank_fusion({"x": scores, "y": -scores}, eligible, default_depth=5)
    assert torch.equal(by_top_k, by_sort)


def test_intra_list_diversity_by_hand() -> None:
    genres = np.array([[1, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
    top = np.array(
        [
            [0, 1],
            [0, 2],
            [0, 3],
            [
                0,
                1,
            ],
        ]
    )
    assert intra_list_diversity(top, genres, 2).tolist() == pytest.approx(
        [0.0, 1.0, 1 - 1 / math.sqrt(2), 0.0]
    )
    three = intra_list_diversity(np.array([[0, 1, 2]]), genres, 3)
    assert three[0] == pytest.approx((0 + 1 + 1) / 3)
    with pytest.raises(ValueError, match="two items"):
        intra_list_diversity(top, genres, 1)


def test_coverage_interval_surrounds_the_coverage_and_is_a_point_when_lists_agree() -> None:
    rng = np.random.default_rng(0)
    top = rng.integers(1, 1001, size=(40, 10))
    coverage = len(np.unique(top)) / 1000
    low, high = coverage_interval(top, 1000, 10, n_boot=300)
    assert low < coverage < high and 0.01 < high - low < 0.2
    same = np.tile(np.arange(1, 11), (50, 1))
    assert coverage_interval(same, 100, 10, n_boot=50) == pytest.approx((0.1, 0.1))


def _dense(scorer, data, split: str) -> torch.Tensor:
    """The users × catalogue matrix the streaming code never builds: the reference."""
    users = np.arange(data.n_users)
    histories = data.sequences("train" if split == "valid" else "valid")
    return scorer(users, [histories[u] for u in users]).float()


def test_streaming_fusion_equals_the_dense_computation(data) -> None:
    scorers = {"pop": fit_popularity(data).score, "ease": fit_ease(data, 50.0).score,
               "itemknn": fit_itemknn(data, 20).score}  # fmt: skip
    names = list(scorers)
    batches = {split: score_batches(scorers, data, split, batch_size=96) for split in ("valid", "test")}
    valid = validation_pass(batches["valid"], data, names)  # 96 users: fused in blocks of 64 and 32
    fits = fit_fusions(valid, names, leave_one_out=True)
    tested = evaluation_pass(batches["test"], data, names, fits, {"pop": 5})
    assert len(valid.users) == data.n_users  # small: every validation user is in the fit
    z = {split: {m: zscore(_dense(fn, data, split), eligible_items(data, split)) for m, fn in scorers.items()}
         for split in ("valid", "test")}  # fmt: skip
    targets = torch.from_numpy(data.targets("valid").astype(np.int64))
    dense_fit = fit_softmax_fusion(z["valid"], eligible_items(data, "valid"), targets)
    for name in names:
        assert fits["ensemble_softmax"].alphas[name] == pytest.approx(dense_fit.alphas[name], rel=1e-4)
    test_eligible = eligible_items(data, "test")
    dense = {
        "ensemble_softmax": weighted_sum(z["test"], fits["ensemble_softmax"].alphas),
        "ensemble_uniform": uniform(z["test"]),
        "ensemble_rrf": reciprocal_rank_fusion({m: _dense(fn, data, "test") for m, fn in scorers.items()},
                                               test_eligible, depth={"pop": 5}),
        **{m: _dense(fn, data, "test") for m, fn in scorers.items()},
    }  # fmt: skip
    for name, matrix in dense.items():
        reference = evaluate(lambda users, histories, m=matrix: m[users], data, "test")
        assert np.array_equal(tested[name].ranks, reference.ranks), name
        assert np.array_equal(tested[name].top, reference.top), name
    for name in names:
        assert np.array_equal(valid.rankings[name].ranks, evaluate(scorers[name], data, "valid").ranks)
    table = leave_one_out_table(fits, tested)
    assert set(table) == set(names) and not any(n.startswith(WITHOUT) for n in table)
    assert table["ease"]["ndcg@10"] == pytest.approx(float(tested[WITHOUT + "ease"].ndcg(10).mean()))
    full = float(tested["ensemble_softmax"].ndcg(10).mean())
    assert table["ease"]["ndcg@10_gain"] == pytest.approx(full - table["ease"]["ndcg@10"])
    low, high = table["ease"]["ndcg@10_gain_ci"]
    assert low <= table["ease"]["ndcg@10_gain"] <= high


def test_fusion_fits_on_a_seeded_sample_when_the_scores_exceed_the_memory_budget(data) -> None:
    scorers = {"pop": fit_popularity(data).score, "ease": fit_ease(data, 50.0).score}
    per_user_mb = (data.n_items + 2) * (8 * 2 + 1) / 2**20
    budget = 40 * per_user_mb
    valid = validation_pass(
        score_batches(scorers, data, "valid", batch_size=32), data, list(scorers), budget, seed=3
    )
    assert len(valid.users) == 40 and np.array_equal(
        valid.users, fit_users(data.n_users, data.n_items + 2, 2, budget, 3)
    )
    assert valid.z["ease"].shape == (40, data.n_items + 2) and valid.eligible.shape == (40, data.n_items + 2)
    rows = torch.from_numpy(valid.users)
    dense = zscore(_dense(scorers["ease"], data, "valid"), eligible_items(data, "valid"))[rows]
    assert torch.allclose(valid.z["ease"], dense, atol=1e-6)
    assert torch.equal(valid.targets, torch.from_numpy(data.targets("valid")[valid.users].astype(np.int64)))
    with pytest.raises(ValueError, match="FUSION_MEMORY_MB=0.0001 holds no user"):
        fit_users(data.n_users, data.n_items + 2, 2, 0.0001, 0)


def test_records_on_real_baselines(data) -> None:
    ease = fit_ease(data, 50.0)
    direct = evaluate(ease.score, data, "test")
    rankings = {"ease": direct, "pop": evaluate(fit_popularity(data).score, data, "test")}
    results = {name: model_record(r, data.genre_matrix(), n_boot=200) for name, r in rankings.items()}
    for record in results.values():
        for metric in ("ndcg@10", "hr@10", "mrr", "coverage@10", "diversity@10"):
            low, high = record[f"{metric}_ci"]
            assert low <= record[metric] <= high
        assert 0 < record["diversity@10"] < 1
    assert results["pop"]["coverage@10"] < results["ease"]["coverage@10"]
    assert best_single(results, ["ease", "pop"]) == "ease"
    compared = paired_against(rankings, ["pop"], "ease", n_boot=200)["pop"]
    assert compared["ndcg@10_diff"] == pytest.approx(results["pop"]["ndcg@10"] - results["ease"]["ndcg@10"])
    assert "hr@10_diff_ci" in compared
    frame = final_frame(results)
    assert list(frame.index) == ["ease", "pop"] and "diversity@10_low" in frame.columns


def test_reranked_scores_put_candidates_first_in_policy_order(tmp_path: Path) -> None:
    base = torch.tensor([[0.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    table = CandidateTable(
        items=torch.tensor([[2, 4]]), scores=torch.tensor([[4.0, 2.0]]),
        like=torch.tensor([[0.1, 0.9]]), rating=torch.tensor([[3.0, 4.5]]),
    )  # fmt: skip
    network = Reinforce(ReinforceConfig(hidden=4, seed=1))
    logits = first_slate_logits(network, table)
    scores = reranked_scores(base, table, logits)
    order = torch.argsort(scores[0, 1:-1], descending=True).add(1).tolist()
    candidates = [2, 4] if logits[0, 0] > logits[0, 1] else [4, 2]
    assert order == [*candidates, 1, 3, 5]
    loaded, name = load_policy(save_policy(network, tmp_path / "policy", "reinforce_offpolicy"))
    assert name == "reinforce_offpolicy"
    assert torch.equal(first_slate_logits(loaded, table), logits)
    with pytest.raises(ArtifactError, match="04_rl_ranking"):
        load_policy(tmp_path / "rl" / "nothing")


def test_members_fail_early_naming_the_missing_notebook_and_the_parameter(
    data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = "pretraining/metrics.json: the stage's metrics.json is missing: run notebooks/02_transformer"
    with pytest.raises(ArtifactError, match=missing):
        load_members(tmp_path, TaskData(data, seed=0), torch.device("cpu"))
    members = Members({"pop": None, "ease": None}, {"causal": None}, {"multitask": None}, None, "", 50, None)
    assert members.score_names == ["pop", "ease", "causal", "multitask"]
    assert members.check_score_members(["ease", "multitask"]) == ["ease", "multitask"]
    # 03b's member is optional: left out, and said, where 03b has not run
    assert members.check_score_members(["ease", "multi_scenario"]) == ["ease"]
    assert "multi_scenario left out" in capsys.readouterr().out
    with pytest.raises(ValueError, match="SCORE_MEMBERS.*rl_reranker.*cannot be fused"):
        members.check_score_members(["ease", "rl_reranker"])
    with pytest.raises(ValueError, match="empty"):
        members.check_score_members([])


def test_damaged_policy_names_the_folder_and_notebook_04(tmp_path: Path) -> None:
    folder = save_policy(
        Reinforce(ReinforceConfig(hidden=4, seed=1)), tmp_path / "rl" / "policy", "reinforce"
    )
    (folder / "policy.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(
        ArtifactError, match=r"the saved policy cannot be loaded .* re-run notebooks/04_rl_ranking"
    ):
        load_policy(folder)


def test_the_student_is_called_distilled_only_when_it_used_the_teacher() -> None:
    alone = {"best": "h24_alone", "results": {"h24_alone": {"soft_weight": 0.0, "cluster_weight": 0.0,
             "hidden": 24, "layers": 1, "from_teacher": True}}}  # fmt: skip
    assert describe_student(alone) == (
        "h24_alone: 1 layer(s) of width 24, trained without the teacher's soft targets "
        "(next-item cross-entropy), started in the teacher's subspace"
    )
    full = {"best": "student_h8", "results": {"student_h8": {"soft_weight": 1.0, "cluster_weight": 0.1,
            "hidden": 8, "layers": 1, "from_teacher": False}}}  # fmt: skip
    assert "distilled from the teacher (next-item cross-entropy + the teacher's soft targets + the " in (
        describe_student(full)
    )
