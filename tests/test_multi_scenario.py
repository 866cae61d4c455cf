"""Chapter 03b's pieces: scenario definitions and merging, the scenario batch and catalogue ranking, the
scenario-aware models (starting as 03's, losses per scenario × task, STAR's weights per scenario), the
scenario weights, the minimum detectable effect, the seesaw table and routing, the plan, and the chosen
model as a catalogue-wide member of 06's ensemble."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from configs import finetune_config, head_gradients

from mtrec_helpers.core import chunked
from mtrec_helpers.core.evaluation import Ranker, RankingResult, minimum_detectable_effect
from mtrec_helpers.core.paths import notebooks_dir
from mtrec_helpers.course.parameters import declared_parameters
from mtrec_helpers.data import ProcessedData, SyntheticConfig, prepare_dataset
from mtrec_helpers.multi_scenario.evaluation import (
    Measured,
    combine,
    paired_auc,
    route,
    scenario_means,
    seesaw,
)
from mtrec_helpers.multi_scenario.member import family_prior, load_scenario_member, scenario_scorer
from mtrec_helpers.multi_scenario.model import ScenarioModel
from mtrec_helpers.multi_scenario.scenarios import (
    FAMILIES,
    ScenarioData,
    define_scenarios,
    genre_families,
    merge_small,
)
from mtrec_helpers.multi_scenario.settings import MultiScenarioSettings, plan, run_plan, scenario_tasks
from mtrec_helpers.multi_scenario.weighting import grid_weighting, scenario_shares
from mtrec_helpers.multitask.finetune import finetune
from mtrec_helpers.multitask.model import build_multitask
from mtrec_helpers.pretraining.artifacts import save_recommender
from mtrec_helpers.pretraining.models import SeqRecModel, build_config
from mtrec_helpers.pretraining.sequences import IGNORE

SYNTHETIC = SyntheticConfig(n_users=240, n_items=100, min_length=12, max_length=40)
MAX_LEN = 20
TASKS = ("next", "rating", "like")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> ProcessedData:
    return prepare_dataset(
        "synthetic", tmp_path_factory.mktemp("ms"), min_interactions=3, synthetic=SYNTHETIC
    )


@pytest.fixture(scope="module")
def task_data(data: ProcessedData) -> ScenarioData:
    return ScenarioData(data, define_scenarios(data, "domain", 20), seed=0)


def _encoder(data: ProcessedData, folder: Path, seen_bias: bool = False) -> Path:
    torch.manual_seed(0)
    config = build_config(data.n_items, "causal", hidden=16, layers=1, heads=2, max_len=MAX_LEN, dropout=0.0,
                          side_info=True, n_genres=len(data.vocab["genres"]), n_year_buckets=13,
                          seen_bias=seen_bias)  # fmt: skip
    model = SeqRecModel(config)
    model.set_side_information(data.genre_matrix(), data.year_buckets())
    if seen_bias:
        with torch.no_grad():
            model.seen_weight.fill_(-2.0)  # a learned seen-item bias: it counts at the items of each input
    return save_recommender(model, folder / "causal", data, {})


@pytest.fixture(scope="module")
def encoder_dir(data: ProcessedData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _encoder(data, tmp_path_factory.mktemp("encoder"))


def _model(encoder_dir: Path, task_data: ScenarioData, kind: str, sharing: str = "shared") -> ScenarioModel:
    torch.manual_seed(0)
    return build_multitask(
        encoder_dir, task_data, TASKS, sharing, model_class=ScenarioModel,
        scenario_names=task_data.scenarios.names, scenario_model=kind,
    ).eval()  # fmt: skip


def _batch(task_data: ScenarioData, n: int = 16):
    return task_data.batch(task_data.train_windows(MAX_LEN)[:n], False, task_data.profile_users("train"))


def test_domain_is_the_chosen_items_family_and_every_item_is_in_its_scenarios_catalogue(
    data: ProcessedData, task_data: ScenarioData
) -> None:
    families, names = genre_families(data)
    assert names[-1] == "other" and all(n.startswith("genre-") for n in names[:-1])  # synthetic: own families
    scenarios = task_data.scenarios
    items = data.interactions["item_idx"].to_numpy()
    assert scenarios.codes.min() == 1 and scenarios.codes.max() == scenarios.k
    assert (scenarios.item_codes[items] == scenarios.codes).all()  # the target is in its own catalogue
    assert scenarios.item_codes[0] == scenarios.item_codes[-1] == 0  # PAD and MASK in none
    test_users = np.bincount(task_data.held_out("test"), minlength=scenarios.k + 1)[1:]
    assert (test_users >= 20).all() or scenarios.k == 1
    merged = [n for n in scenarios.names if "+" in n]
    assert all(n.split("+") == scenarios.merged[n] for n in merged)


def test_movielens_families_take_the_first_family_in_priority_order() -> None:
    assert list(FAMILIES)[:2] == ["family", "action"]
    frame = SimpleNamespace()
    frame.vocab = {"genres": ["Action", "Children's", "Comedy", "Drama", "Romance", "unknown"]}
    frame.n_items = 4
    genres = [["Action", "Children's"], ["Drama", "Romance"], ["unknown"], []]
    frame.items = pd.DataFrame({"item_idx": [1, 2, 3, 4], "genres": genres})
    codes, names = genre_families(frame)
    assert names == ["family", "action", "comedy", "drama", "other"]
    assert [names[c] for c in codes[1:5]] == ["family", "comedy", "other", "other"]


def test_small_scenarios_merge_into_their_smaller_neighbour_until_each_has_enough_users() -> None:
    names = ["a", "b", "c", "d"]
    codes = np.array([0] * 50 + [1] * 5 + [2] * 30 + [3] * 8)
    held_out = codes[::1]
    merged_codes, kept, merged = merge_small(codes, names, held_out, min_users=10)
    assert kept == ["a", "b+c", "d"] or kept == ["a", "b+c+d"]
    assert all(np.bincount(merged_codes[held_out]) >= 10)
    assert merge_small(codes, names, held_out, min_users=10**6)[1] == ["a+b+c+d"]  # one left: no error
    assert merge_small(codes, names, held_out, min_users=1)[1] == names


def test_user_group_uses_age_groups_with_profiles_and_activity_without(data: ProcessedData) -> None:
    scenarios = define_scenarios(data, "user_group", 1)
    users = data.interactions["user_idx"].to_numpy()
    for code in np.unique(scenarios.codes):  # a user's interactions share one scenario
        assert len(np.intersect1d(users[scenarios.codes == code], users[scenarios.codes != code])) == 0
    assert scenarios.item_codes is None  # same catalogue for every group
    time = define_scenarios(data, "time", 1)
    weekend = data.interactions["weekday"].to_numpy() >= 5
    assert ((time.codes == 2) == weekend).all() and time.names[:2] == ["weekday", "weekend"]
    with pytest.raises(ValueError, match="SCENARIOS='season'"):
        define_scenarios(data, "season", 1)


def test_the_batch_carries_the_predicted_interactions_scenario(task_data: ScenarioData) -> None:
    batch = _batch(task_data)
    labelled = batch.next_item != IGNORE
    assert (batch.scenario[labelled] > 0).all() and (
        batch.scenario[~labelled & (batch.items == 0)] == 0
    ).all()
    items = task_data.scenarios.item_codes[batch.next_item[labelled].numpy()]
    assert (items == batch.scenario[labelled].numpy()).all()  # domain: the scenario is the target's family
    assert type(batch.to(torch.device("cpu"))).__name__ == "ScenarioBatch"
    focused = task_data.focus(2)
    kept = focused.train_windows(MAX_LEN)
    codes = task_data.scenario.numpy()
    assert 0 < len(kept) <= len(task_data.train_windows(MAX_LEN)) and all(
        (codes[w[1:]] == 2).any() for w in kept
    )
    users = focused.validation_sample(0, 0)
    assert len(users) and (task_data.held_out("valid")[users] == 2).all()


def test_the_catalogue_ranker_ranks_within_the_users_scenario(task_data: ScenarioData) -> None:
    data = task_data.data
    users = np.arange(data.n_users)
    scores = torch.randn(len(users), data.n_items + 2, generator=torch.Generator().manual_seed(0))
    histories = [np.zeros(0, np.int64)] * len(users)
    full, within = Ranker(data, "test"), task_data.ranker("test")
    full.add(users, histories, scores)
    within.add(users, histories, scores)
    codes = task_data.held_out("test")
    inside = within.result()
    assert (inside.ranks <= full.result().ranks).all() and (inside.ranks < full.result().ranks).any()
    catalogue = task_data.scenarios.item_codes
    for user in users[:50]:
        top = inside.top[user][: (catalogue == codes[user]).sum()]
        assert (catalogue[top] == codes[user]).all()


@pytest.mark.parametrize("kind", ["shared", "embedding", "star"])
def test_every_scenario_model_starts_as_03s_and_its_losses_average_to_the_pooled_ones(
    encoder_dir: Path, task_data: ScenarioData, kind: str
) -> None:
    batch = _batch(task_data)
    torch.manual_seed(0)
    reference = build_multitask(encoder_dir, task_data, TASKS, "mmoe").eval()
    model = _model(encoder_dir, task_data, kind, "mmoe")
    with torch.no_grad():
        torch.testing.assert_close(model.task_outputs(batch)["next"], reference.task_outputs(batch)["next"])
        grouped, pooled = model.task_losses(batch), reference.task_losses(batch)
    labelled = batch.scenario[batch.next_item != IGNORE]
    share = torch.bincount(labelled, minlength=task_data.scenarios.k + 1)[1:].float() / len(labelled)
    assert set(grouped) == {f"{s}/{t}" for s in task_data.scenarios.names for t in TASKS}
    for task in TASKS:
        per_scenario = torch.stack([grouped[f"{s}/{task}"] for s in task_data.scenarios.names])
        torch.testing.assert_close((share * per_scenario).sum(), pooled[task], rtol=1e-5, atol=1e-5)


def test_refitting_the_heads_skips_every_scenarios_next_item_loss_with_the_same_gradients(
    encoder_dir: Path, task_data: ScenarioData
) -> None:
    nexts = [f"{s}/next" for s in task_data.scenarios.names]
    for kind in ("shared", "embedding", "experts", "star"):  # STAR's next-item path draws dropout: computed
        model = _model(encoder_dir, task_data, kind, "mmoe")
        full, full_losses = head_gradients(model, _batch(task_data, 32), without_next=False)
        heads, losses = head_gradients(model, _batch(task_data, 32), without_next=True)
        kept = float(kind == "star")
        assert all(float(full_losses[n]) > 1.0 for n in nexts)
        assert all(float(losses[n]) == kept * float(full_losses[n]) for n in nexts)
        assert all(torch.equal(a, b) for a, b in zip(full, heads, strict=True)) and len(full) > 3


def test_with_catalogues_each_positions_softmax_is_over_its_scenarios_items(
    encoder_dir: Path, task_data: ScenarioData
) -> None:
    batch = _batch(task_data)
    plain = _model(encoder_dir, task_data, "shared")
    torch.manual_seed(0)
    within = build_multitask(
        encoder_dir, task_data, TASKS, model_class=ScenarioModel, scenario_names=task_data.scenarios.names,
        catalogues=True,
    ).eval()  # fmt: skip
    within.set_catalogues(task_data.scenarios.item_codes)
    with torch.no_grad():
        full, own = plain.task_losses(batch), within.task_losses(batch)
        states, rows, positions = within.labelled_states(batch)
        scores = within.scores(
            states["next"][rows, positions], within.seen_items(batch.items, rows, positions)
        )
    scenario, target = batch.scenario[rows, positions], batch.next_item[rows, positions]
    scores = scores.masked_fill(within.item_scenarios[None, :] != scenario[:, None], float("-inf"))
    expected = torch.nn.functional.cross_entropy(scores, target, reduction="none")
    first = scenario == 1
    torch.testing.assert_close(own[f"{task_data.scenarios.names[0]}/next"], expected[first].mean())
    assert all(own[f"{s}/next"] < full[f"{s}/next"] for s in task_data.scenarios.names)  # fewer rivals
    assert own[f"{task_data.scenarios.names[0]}/like"] == full[f"{task_data.scenarios.names[0]}/like"]


@pytest.mark.parametrize(("kind", "budget"), [("shared", None), ("star", None), ("shared", 200)])
def test_catalogue_losses_and_gradients_are_the_masked_full_softmaxs(
    data: ProcessedData,
    task_data: ScenarioData,
    kind: str,
    budget: int | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each scenario's next-item loss is computed on its own items' columns alone: the same losses and
    gradients as the (N, V) logits with every other item at −∞ (the definition) — in one chunk, or in
    several of at most ``budget`` logits."""
    if budget:
        monkeypatch.setattr(chunked, "LOGIT_BUDGET", budget)
    torch.manual_seed(0)
    model = build_multitask(
        _encoder(data, tmp_path, seen_bias=True), task_data, TASKS, model_class=ScenarioModel,
        scenario_names=task_data.scenarios.names, scenario_model=kind, catalogues=True,
    ).eval()  # fmt: skip
    model.set_catalogues(task_data.scenarios.item_codes)
    assert model.learned_seen_bias() == -2.0
    if kind == "star":
        with torch.no_grad():
            model.aux_network[-1].weight.normal_(0, 0.5)  # a trained auxiliary network: its logits count
    batch, names = _batch(task_data, 32), task_data.scenarios.names
    weights = torch.rand(len(names), generator=torch.Generator().manual_seed(1)) + 0.5

    def gradients(loss: torch.Tensor) -> list[torch.Tensor]:
        model.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    losses = model.task_losses(batch)
    own = torch.stack([losses[f"{s}/next"] for s in names])
    ours = gradients((weights * own).sum())
    states, rows, positions = model.labelled_states(batch)
    scenario, target = batch.scenario[rows, positions], batch.next_item[rows, positions]
    scores = model.next_scores(batch, states["next"], rows, positions)
    per_row = F.cross_entropy(
        scores.masked_fill(model.item_scenarios[None, :] != scenario[:, None], float("-inf")),
        target,
        reduction="none",
    )
    masked = torch.stack([per_row[scenario == code].mean() for code in range(1, len(names) + 1)])
    torch.testing.assert_close(own, masked, rtol=1e-5, atol=1e-6)
    expected = gradients((weights * masked).sum())
    assert len(ours) == len(expected) > 10
    for a, b in zip(ours, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_star_weights_of_one_scenario_move_only_that_scenarios_predictions(
    encoder_dir: Path, task_data: ScenarioData
) -> None:
    model = _model(encoder_dir, task_data, "star")
    batch = _batch(task_data)
    with torch.no_grad():
        model.star_out.weight.normal_(0, 0.5)  # a trained shared output layer
        before = model.task_outputs(batch)["next"]
        model.star_out_s[1].mul_(3.0)  # scenario 1's specific weights W_1' only
        after = model.task_outputs(batch)["next"]
    scenario = batch.scenario[batch.next_item != IGNORE]
    changed = (after - before).abs().amax(dim=1) > 1e-6
    assert changed[scenario == 1].all() and not changed[scenario != 1].any()


def test_scenario_layers_train_and_separate_training_sees_only_its_scenario(
    encoder_dir: Path, task_data: ScenarioData
) -> None:
    names = task_data.scenarios.names
    events = np.bincount(task_data.scenarios.codes, minlength=len(names) + 1)[1:].tolist()
    model = _model(encoder_dir, task_data, "experts").train()
    gates = model.cgc_gates.detach().clone()
    weighting = grid_weighting(f"only:{names[0]}", names, events, dict.fromkeys(TASKS, 1.0))
    config = dataclasses.replace(finetune_config(epochs=1, batch_size=32), refit_epochs=0)
    result = finetune(model, weighting, task_data.focus(1), config, torch.device("cpu"), progress=False)
    moved = (model.cgc_gates.detach() - gates).abs().flatten(1).amax(dim=1)
    assert moved[1] > 0 and (moved[2:] == 0).all()  # only scenario 1's gates learn: its loss alone counts
    assert {f"weight_{names[0]}/next", f"weight_{names[-1]}/next"} <= set(result.history[0])


def test_scenario_weights_have_mean_one_and_follow_their_scheme() -> None:
    events = [100, 300, 600]
    proportional = scenario_shares("proportional", events)
    np.testing.assert_allclose(proportional, np.array(events) * 3 / 1000)
    np.testing.assert_allclose(scenario_shares("uniform", events), 1.0)
    balanced = scenario_shares("balanced", events)
    assert balanced.mean() == pytest.approx(1.0) and balanced[0] > balanced[1] > balanced[2]
    fixed = grid_weighting("balanced", ["a", "b", "c"], events, {"next": 1.0, "like": 0.3}).weights()
    assert fixed["a/like"] == pytest.approx(0.3 * balanced[0]) and fixed["c/next"] == pytest.approx(
        balanced[2]
    )
    only = grid_weighting("only:b", ["a", "b", "c"], events, {"next": 1.0}).weights()
    assert only == {"a/next": 0.0, "b/next": 1.0, "c/next": 0.0}
    assert set(grid_weighting("dwa", ["a", "b"], [1, 1], {"next": 1.0}).weights()) == {"a/next", "b/next"}
    with pytest.raises(ValueError, match="only:z"):
        grid_weighting("only:z", ["a"], [1], {"next": 1.0})
    with pytest.raises(ValueError, match="weighting 'gradnorm'"):
        grid_weighting("gradnorm", ["a"], [1], {"next": 1.0})


def test_the_minimum_detectable_effect_is_the_power_formula_and_shrinks_with_users() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(0.01, 0.1, size=400)
    assert minimum_detectable_effect(d) == pytest.approx((1.959964 + 0.841621) * d.std(ddof=1) / 20, rel=1e-5)
    assert minimum_detectable_effect(np.tile(d, 4)) < minimum_detectable_effect(d) / 1.9
    with pytest.raises(ValueError, match="at least 2 users"):
        minimum_detectable_effect(d[:1])


def _measured(ranks: np.ndarray, split: str = "test") -> Measured:
    ranking = RankingResult(ranks, np.zeros((len(ranks), 10), np.int64), 100, split, True)
    return Measured(ranking, {"rating": ranks.astype(float)}, np.arange(len(ranks)))


def test_the_seesaw_table_pairs_each_scenarios_users_smallest_first(task_data: ScenarioData) -> None:
    n = task_data.data.n_users
    codes = task_data.held_out("test")
    shared = _measured(np.full(n, 5))
    better_in_1 = _measured(np.where(codes == 1, 0, 5))
    table = seesaw({"shared": shared, "aware": better_in_1}, task_data, "test", n_boot=100)
    sizes = [row["n_users"] for row in table["aware"].values()]
    assert sizes == sorted(sizes)
    first = table["aware"][task_data.scenarios.names[0]]
    assert first["diff"] == pytest.approx(1 - 1 / np.log2(7)) and first["diff_ci"][0] > 0
    others = [r for s, r in table["aware"].items() if s != task_data.scenarios.names[0]]
    assert all(r["diff"] == 0 and r["mde"] == 0 for r in others)
    separate = combine({1: better_in_1, 2: shared}, codes)
    assert (separate.ranking.ranks == np.where(codes == 1, 0, 5)).all()
    means = scenario_means(_measured(np.where(codes == 2, 0, 20), "test"), task_data)
    assert means[task_data.scenarios.names[1]] == 1.0 and means[task_data.scenarios.names[0]] == 0.0


def test_the_paired_auc_difference_is_sklearns_with_a_paired_interval() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.4
    good, weak = labels + rng.normal(0, 0.7, 300), labels + rng.normal(0, 1.5, 300)
    diff, (low, high) = paired_auc(good, weak, labels, n_boot=500)
    assert diff == pytest.approx(roc_auc_score(labels, good) - roc_auc_score(labels, weak))
    assert 0 < low < diff < high
    assert paired_auc(good, good, labels, n_boot=100) == (0.0, [0.0, 0.0])
    assert paired_auc(good, weak, np.ones(300, bool)) is None  # one class: AUC undefined


def test_routing_serves_each_scenario_by_the_model_validation_prefers() -> None:
    valid = {"shared": {"a": 0.30, "b": 0.20, "c": 0.10}, "experts": {"a": 0.31, "b": 0.20, "c": 0.09}}
    assert route(valid, "experts") == {"a": "experts", "b": "shared", "c": "shared"}  # a tie keeps shared


def test_the_family_prior_counts_only_interactions_before_the_split(task_data: ScenarioData) -> None:
    test, valid = family_prior(task_data, "test").exp(), family_prior(task_data, "valid").exp()
    torch.testing.assert_close(test.sum(1), torch.ones(task_data.data.n_users))
    assert (test[:, 0] == 0).all() and (test[:, 1:] > 0).all()  # smoothed: no family impossible
    codes = task_data.held_out("valid")
    users = np.arange(task_data.data.n_users)
    assert (test[users, codes] > valid[users, codes]).all()  # the valid interaction counts for test only


def test_the_domain_member_scores_the_catalogue_without_the_held_out_items_family(
    encoder_dir: Path, task_data: ScenarioData, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = build_multitask(
        encoder_dir, task_data, TASKS, model_class=ScenarioModel, scenario_names=task_data.scenarios.names,
        scenario_model="embedding", catalogues=True,
    ).eval()  # fmt: skip
    model.set_catalogues(task_data.scenarios.item_codes)
    with torch.no_grad():
        model.scenario_embeddings.weight.normal_(0, 1.0)  # a trained scenario embedding
    users = np.arange(32)
    scores = scenario_scorer(model, task_data, "test")(users, [])
    assert torch.isfinite(scores).all()
    items = torch.as_tensor(task_data.scenarios.item_codes) > 0
    torch.testing.assert_close(torch.logsumexp(scores[:, items], dim=1), torch.zeros(len(users)))  # P(i | u)
    codes, test = task_data.scenarios.codes, task_data.split_code == 2
    relabelled = np.where(test, codes % task_data.scenarios.k + 1, codes)  # each held-out family changed
    moved = ScenarioData(task_data.data, dataclasses.replace(task_data.scenarios, codes=relabelled), seed=0)
    assert (moved.held_out("test") != task_data.held_out("test")).all()
    torch.testing.assert_close(scenario_scorer(model, moved, "test")(users, []), scores)  # never read
    params = {"SCENARIOS": "domain", "MIN_SCENARIO_USERS": 20, "SEED": 0, "model": "embedding"}
    assert load_scenario_member(tmp_path, task_data, torch.device("cpu")) is None  # 03b not run: no member
    save_recommender(model, tmp_path / "multi_scenario" / "model", task_data.data, params)
    member = load_scenario_member(tmp_path, task_data, torch.device("cpu"))
    assert member.name == "embedding"
    torch.testing.assert_close(member.scorer("test")(users, []), scores)


def test_the_plan_names_models_separate_runs_and_weightings_once_a_model_is_chosen() -> None:
    cell = declared_parameters(notebooks_dir() / "03b_multi_scenario.ipynb")
    cell.update(MODELS=["embedding", "star"], SEPARATE=True, WEIGHTINGS=["proportional", "uniform", "dwa"])
    settings = MultiScenarioSettings.of(cell)
    first = [r.name for r in plan(settings, ["a", "b"], None)]
    assert first == ["shared", "embedding", "star", "separate:a", "separate:b"]
    assert [r.name for r in plan(settings, ["a"], None)] == [
        "shared",
        "embedding",
        "star",
    ]  # nothing to separate
    later = plan(settings, ["a", "b"], "star")[5:]
    assert [(r.name, r.model, r.weighting) for r in later] == [("star+uniform", "star", "uniform"),
                                                               ("star+dwa", "star", "dwa")]  # fmt: skip
    trained: list[str] = []

    class Done:
        def __init__(self, name: str) -> None:
            self.valid_mean = {"embedding": 0.2, "star": 0.1}.get(name, 0.0)

    run_plan(settings, ["a", "b"], lambda r: trained.append(r.name) or Done(r.name), {})
    assert trained[-2:] == ["embedding+uniform", "embedding+dwa"]  # chosen on validation: embedding
    with pytest.raises(ValueError, match="MODELS=\\['mmoe'\\]"):
        plan(dataclasses.replace(settings, models=["mmoe"]), ["a"], None)
    with pytest.raises(ValueError, match="profile task belongs to users"):
        scenario_tasks(["next", "profile"], ["next", "profile"])
    assert scenario_tasks(["like", "next", "genre"], ["next", "like"]) == ("next", "like")


def test_runs_trained_ahead_side_by_side_are_read_back_equal_to_runs_trained_here(
    encoder_dir: Path, task_data: ScenarioData, tmp_path: Path
) -> None:
    import functools
    import shutil

    from mtrec_helpers.multi_scenario.settings import Reference, train_run

    cell = declared_parameters(notebooks_dir() / "03b_multi_scenario.ipynb")
    cell.update(MODELS=["embedding"], SEPARATE=False, WEIGHTINGS=[], EPOCHS=2, MAX_STEPS=3, BATCH_SIZE=32,
                REFIT_EPOCHS=1, N_BOOT=20)  # fmt: skip
    settings = MultiScenarioSettings.of(cell)
    reference = Reference("shared", 0, {"next": 1.0, "rating": 0.3, "like": 0.3}, "mtl_fixed")
    outcomes = []
    for workers in (1, 2):
        artifacts = tmp_path / f"workers{workers}"
        shutil.copytree(encoder_dir, artifacts / "pretrained" / "causal")
        train = functools.partial(
            train_run, settings=settings, data=task_data, reference=reference, artifacts=artifacts,
            device=torch.device("cpu"),
        )  # fmt: skip
        outcomes.append(run_plan(settings, task_data.scenarios.names, train, {}, workers=workers))
    serial, ahead = outcomes
    assert list(serial) == list(ahead) == ["shared", "embedding"]
    for name, outcome in serial.items():
        assert outcome.valid == ahead[name].valid and outcome.training.history == ahead[name].training.history
        weights, others = outcome.model.state_dict(), ahead[name].model.state_dict()
        assert all(torch.equal(weights[k], others[k]) for k in weights), name
