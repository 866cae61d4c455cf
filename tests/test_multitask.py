"""Multi-task finetuning: no label leakage, a faithful start from the pretrained encoder, labels and
metrics checked by hand, save/restore, LoRA, and heads that learn on synthetic data."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from configs import finetune_config, head_gradients
from interruption import Interrupted, count_calls, interrupt_on_call

from mtrec_helpers.core.evaluation import Ranker, evaluate
from mtrec_helpers.data import ProcessedData, RawData, SyntheticConfig, prepare_dataset
from mtrec_helpers.data.store import build
from mtrec_helpers.multitask.finetune import FinetuneResult, finetune, validation_metrics
from mtrec_helpers.multitask.lora import add_lora, merge_lora, trainable_share
from mtrec_helpers.multitask.metrics import (
    THRESHOLDS,
    fit_rating_biases,
    multitask_scorer,
    predict,
    profile_metrics,
    task_metrics,
    threshold_f1,
    trivial_predictions,
)
from mtrec_helpers.multitask.model import MultiTaskModel, build_multitask
from mtrec_helpers.multitask.tasks import TASKS, TaskData, check_tasks, gap_buckets, profile_split
from mtrec_helpers.multitask.weighting import make_weighting
from mtrec_helpers.pretraining.artifacts import load_recommender, save_recommender
from mtrec_helpers.pretraining.models import SeqRecModel, build_config, catalogue_scores
from mtrec_helpers.pretraining.sequences import IGNORE

CPU = torch.device("cpu")
SYNTHETIC = SyntheticConfig(n_users=240, n_items=100, min_length=12, max_length=40)
MAX_LEN = 20


@pytest.fixture(scope="module")
def task_data(tmp_path_factory: pytest.TempPathFactory) -> TaskData:
    folder = tmp_path_factory.mktemp("multitask")
    return TaskData(prepare_dataset("synthetic", folder, min_interactions=3, synthetic=SYNTHETIC), seed=0)


@pytest.fixture(scope="module")
def encoder_dir(task_data: TaskData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A (randomly initialised) causal encoder saved the way notebook 02 saves one."""
    torch.manual_seed(0)
    data = task_data.data
    genres = len(data.vocab["genres"])
    config = build_config(data.n_items, "causal", hidden=16, layers=1, heads=2, max_len=MAX_LEN, dropout=0.0,
                          side_info=True, n_genres=genres, n_year_buckets=13, seen_bias=True)  # fmt: skip
    model = SeqRecModel(config)
    model.set_side_information(data.genre_matrix(), data.year_buckets())
    with torch.no_grad():
        model.seen_weight.fill_(-0.5)
    return save_recommender(model, tmp_path_factory.mktemp("encoder") / "causal", data, {})


def _model(encoder_dir: Path, task_data: TaskData, tasks=TASKS, seed: int = 0, **options) -> MultiTaskModel:
    torch.manual_seed(seed)
    model = build_multitask(encoder_dir, task_data, tasks, **options).eval()
    with torch.no_grad():  # non-zero input features, so that leakage through them would show
        for name in ("hour_embeddings", "weekday_embeddings", "gap_embeddings", "rating_embeddings"):
            getattr(model, name).weight.normal_(0.0, 0.5)
    return model


def _outputs(model: MultiTaskModel, batch) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return model.task_outputs(batch)


def test_starts_exactly_at_the_pretrained_encoder(encoder_dir: Path, task_data: TaskData) -> None:
    model = build_multitask(encoder_dir, task_data, TASKS).eval()
    encoder = load_recommender(encoder_dir)[0]
    users = np.arange(12)
    batch = task_data.split_batch(users, "test", MAX_LEN)
    histories = [task_data.data.sequences("valid")[u] for u in users]
    with torch.no_grad():
        reference = catalogue_scores(encoder, histories)
    torch.testing.assert_close(_outputs(model, batch)["next"], reference)


def test_target_labels_never_reach_the_predictions(encoder_dir: Path, task_data: TaskData) -> None:
    """Rewrite the held-out interactions' rating and like: no prediction of any head moves."""
    model = _model(encoder_dir, task_data, sharing="mmoe")
    users = np.arange(40)
    before = _outputs(model, task_data.split_batch(users, "test", MAX_LEN))
    rows = np.flatnonzero(task_data.split_code == 2) + 1
    changed = TaskData.__new__(TaskData)
    changed.__dict__.update(task_data.__dict__)
    changed.rating = task_data.rating.clone()
    changed.rating_bucket = task_data.rating_bucket.clone()
    changed.like = task_data.like.clone()
    changed.rating[rows] = 6.0 - changed.rating[rows]
    changed.rating_bucket[rows] = torch.randint(1, 11, (len(rows),))
    changed.like[rows] = 1.0 - changed.like[rows]
    batch = changed.split_batch(users, "test", MAX_LEN)
    assert (batch.rating[:, -1] != task_data.split_batch(users, "test", MAX_LEN).rating[:, -1]).any()
    after = _outputs(model, batch)
    for name in before:
        torch.testing.assert_close(after[name], before[name], msg=f"{name} saw the target's labels")


def test_genre_head_does_not_see_the_target_item(encoder_dir: Path, task_data: TaskData) -> None:
    """Swap the predicted item: genres (the user's interest) stay, rating and like may change."""
    model = _model(encoder_dir, task_data)
    batch = task_data.split_batch(np.arange(30), "test", MAX_LEN)
    before = _outputs(model, batch)
    swapped = dataclasses.replace(batch, next_item=torch.where(batch.next_item == IGNORE, IGNORE, 1))
    after = _outputs(model, swapped)
    torch.testing.assert_close(after["genre"], before["genre"])
    torch.testing.assert_close(after["profile_0"], before["profile_0"])
    assert not torch.allclose(after["rating"], before["rating"])


def test_later_interactions_never_reach_earlier_positions(encoder_dir: Path, task_data: TaskData) -> None:
    """Every input of positions ≥ j changed: the predictions for positions < j stay the same."""
    model = _model(encoder_dir, task_data)
    windows = task_data.train_windows(MAX_LEN)[:16]
    batch = task_data.batch(windows, last_only=False, profile_users=task_data.profile_users("train"))
    cut = batch.items.shape[1] - 5
    edited = dataclasses.replace(
        batch,
        items=torch.cat([batch.items[:, :cut], torch.randint(1, 50, (len(windows), 5))], 1),
        rating_in=torch.cat([batch.rating_in[:, :cut], torch.randint(1, 11, (len(windows), 5))], 1),
        hour=torch.cat([batch.hour[:, :cut], torch.randint(1, 25, (len(windows), 5))], 1),
        gap=torch.cat([batch.gap[:, :cut], torch.randint(1, 30, (len(windows), 5))], 1),
    )
    early = batch.next_item.clone()
    early[:, cut:] = IGNORE
    before = _outputs(model, dataclasses.replace(batch, next_item=early))
    after = _outputs(model, dataclasses.replace(edited, next_item=early))
    for name in ("next", "rating", "like", "genre"):
        torch.testing.assert_close(
            after[name], before[name], msg=f"{name} at an early position saw the future"
        )


def test_batch_shifts_inputs_and_labels(task_data: TaskData) -> None:
    rows = task_data.user_rows(0, "train")[:6]
    batch = task_data.batch([rows], last_only=False, profile_users=np.ones(task_data.data.n_users, bool))
    assert batch.items[0].tolist() == task_data.item[rows[:-1]].tolist()
    assert batch.next_item[0].tolist() == task_data.item[rows[1:]].tolist()
    assert batch.rating_in[0].tolist() == (2 * task_data.rating[rows[:-1]]).long().tolist()
    assert batch.rating[0].tolist() == task_data.rating[rows[1:]].tolist()
    assert batch.hour[0].tolist() == task_data.hour[rows[1:]].tolist()  # the predicted moment's context
    hidden = task_data.batch([rows], last_only=False, profile_users=np.zeros(task_data.data.n_users, bool))
    assert hidden.profile.eq(-1).all()
    test = task_data.split_batch(np.array([0]), "test", MAX_LEN)
    assert int(test.next_item[0, -1]) == int(task_data.data.targets("test")[0])
    assert (test.next_item[0, :-1] == IGNORE).all()


def test_gap_buckets_by_hand() -> None:
    users = np.array([0, 0, 0, 0, 1, 1])
    times = np.array([100, 100, 101, 101 + 1024, 5, 5 + 2**20])
    assert gap_buckets(users, times).tolist() == [1, 2, 3, 3 + 10, 1, 3 + 20]


def test_profile_split_is_a_seeded_partition() -> None:
    codes = profile_split(1000, seed=3)
    assert np.bincount(codes).tolist() == [800, 100, 100]
    assert (profile_split(1000, seed=3) == codes).all() and not (profile_split(1000, seed=4) == codes).all()


def test_bad_task_names_and_masked_encoders_are_refused(task_data: TaskData) -> None:
    with pytest.raises(ValueError, match="TASKS=.*choose a non-empty subset"):
        check_tasks(["next", "ratings"])
    assert check_tasks(["genre", "next"]) == ("next", "genre")
    masked = build_config(task_data.data.n_items, "masked", hidden=16, layers=1, heads=2, max_len=MAX_LEN)
    from mtrec_helpers.multitask.model import multitask_config

    with pytest.raises(ValueError, match="causal encoder.*ENCODER='causal'"):
        MultiTaskModel(multitask_config(masked, task_data, TASKS))


def test_rating_biases_solve_the_regularised_least_squares() -> None:
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 8, 200), rng.integers(0, 6, 200)
    ratings = 3 + 0.5 * (users % 3) - 0.4 * (items % 2) + rng.normal(0, 0.1, 200)
    mean, user_bias, item_bias = fit_rating_biases(users, items, ratings, (8, 6), reg=2.0, sweeps=200)
    residual = ratings - mean - user_bias[users] - item_bias[items]
    # stationarity: each bias equals the regularised mean of its residual
    assert np.allclose(np.bincount(users, residual, 8), 2.0 * user_bias, atol=1e-6)
    assert np.allclose(np.bincount(items, residual, 6), 2.0 * item_bias, atol=1e-6)
    assert np.sqrt(np.mean(residual**2)) < 0.15


def test_task_metrics_by_hand() -> None:
    targets = {
        "rating": np.array([4.0, 2.0]),
        "like": np.array([1.0, 0.0, 1.0]),
        "genres": np.array([[1, 0], [0, 1]]),
    }
    record = task_metrics(
        {
            "rating": np.array([3.0, 2.0]),
            "like": np.array([0.9, 0.2, 0.4]),
            "genre": np.array([[0.8, 0.3], [0.6, 0.7]]),
        },
        targets,
        genre_threshold=0.5,
    )
    assert record["rating_rmse"] == pytest.approx(np.sqrt(0.5)) and record["rating_mae"] == pytest.approx(0.5)
    assert record["like_auc"] == pytest.approx(1.0)
    assert record["like_logloss"] == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(0.4)) / 3)
    assert record["genre_micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 0))  # tp 2, fp 1, fn 0
    assert record["genre_auc"] == pytest.approx(1.0)


def test_profile_metrics_use_only_the_split_users() -> None:
    truth = np.array([[0, 1, 2], [1, 0, 2], [1, 1, 0], [0, 0, 0]])
    guesses = [np.eye(2)[[0, 0, 1, 1]], np.eye(2)[[1, 1, 1, 1]], np.eye(3)[[2, 2, 2, 2]]]
    record = profile_metrics(
        guesses, {"profile": truth, "profile_users": np.array([True, True, False, False])}
    )
    assert record["profile_age_bucket_accuracy"] == 0.5  # users 0 and 1 only
    assert record["profile_gender_accuracy"] == 0.5 and record["profile_occupation_accuracy"] == 1.0
    assert record["profile_accuracy"] == pytest.approx(2 / 3)


def test_save_pretrained_restores_heads_and_encoder(
    encoder_dir: Path, task_data: TaskData, tmp_path: Path
) -> None:
    model = _model(encoder_dir, task_data, sharing="mmoe")
    folder = save_recommender(model, tmp_path / "multitask", task_data.data, {"model": "x"})
    restored = load_recommender(folder, MultiTaskModel)[0]
    assert restored.config.sharing == "mmoe" and restored.config.tasks == list(TASKS)
    batch = task_data.split_batch(np.arange(20), "test", MAX_LEN)
    for name, value in _outputs(model, batch).items():
        torch.testing.assert_close(_outputs(restored, batch)[name], value)


def test_lora_trains_adapters_and_merges_into_a_plain_model(encoder_dir: Path, task_data: TaskData) -> None:
    model = build_multitask(encoder_dir, task_data, ("next", "like"))
    query = model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    with warnings.catch_warnings(record=True) as caught:  # peft's use of a deprecated name stays quiet
        warnings.simplefilter("always")
        wrapped = add_lora(model, rank=4, alpha=8)
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
    assert 0 < trainable_share(model) < 0.5
    assert not model.bert.embeddings.word_embeddings.weight.requires_grad
    config = finetune_config(epochs=1, batch_size=64, lr=5e-3, head_epochs=0, patience=3)
    finetune(
        model,
        make_weighting("fixed", ["next", "like"]),
        task_data,
        config,
        torch.device("cpu"),
        progress=False,
    )
    batch = task_data.split_batch(np.arange(10), "test", MAX_LEN)
    with torch.no_grad():
        wrapped_scores = model.task_outputs(batch)["next"]
    merged = merge_lora(wrapped)
    assert type(merged) is MultiTaskModel and not any("lora" in n for n, _ in merged.named_parameters())
    assert not torch.allclose(merged.bert.encoder.layer[0].attention.self.query.weight, query)
    torch.testing.assert_close(_outputs(merged, batch)["next"], wrapped_scores, atol=1e-4, rtol=1e-4)


def _two_camps(folder: Path, n_users: int = 160, n_items: int = 40) -> TaskData:
    """Two kinds of users (gender = kind). Items are 'low' (first half, genre 'low') or 'high'.
    Kind 0 picks low items 80% of the time and rates low items 5, high items 1; kind 1 the mirror
    image. Every item is rated 5 by one kind and 1 by the other, which a user + item bias model
    cannot express; a sequence model can tell the kind from what the user watched and rated."""
    rng = np.random.default_rng(0)
    half = n_items // 2
    rows, users = [], []
    for user in range(1, n_users + 1):
        kind = user % 2
        for step in range(int(rng.integers(10, 18))):
            low = (rng.random() < 0.8) != bool(kind)
            item = int(rng.integers(half)) + (1 if low else half + 1)
            rows.append((user, item, 5.0 if low != bool(kind) else 1.0, 1000 * user + step))
        users.append((user, 30, "25-34", "FM"[kind], "other"))
    genres = [["low"] if i <= half else ["high"] for i in range(1, n_items + 1)]
    items = pd.DataFrame({"item_id": np.arange(1, n_items + 1), "title": "x", "year": 2000, "genres": genres})
    raw = RawData(
        "two-camps",
        pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]),
        items,
        pd.DataFrame(users, columns=["user_id", "age", "age_bucket", "gender", "occupation"]),
        ["low", "high"],
        (1.0, 5.0, 1.0),
        True,
    )
    frames = build(raw, min_interactions=3)
    return TaskData(ProcessedData(*frames, manifest={"fingerprint": "two-camps"}, folder=folder), seed=0)


def test_heads_learn_what_trivial_baselines_cannot(tmp_path: Path) -> None:
    """Rating, like, genre and profile all depend on the user's kind, visible only in the sequence:
    trained heads beat the bias model, the base rate, genre frequencies and the majority class."""
    task_data = _two_camps(tmp_path)
    torch.manual_seed(0)
    encoder = SeqRecModel(build_config(task_data.data.n_items, "causal", hidden=16, layers=1, heads=2,
                                       max_len=MAX_LEN, dropout=0.0, n_genres=2))  # fmt: skip
    encoder.set_side_information(task_data.data.genre_matrix(), task_data.data.year_buckets())
    folder = save_recommender(encoder, tmp_path / "encoder", task_data.data, {})
    model = build_multitask(folder, task_data, TASKS)
    config = finetune_config(epochs=6, batch_size=8, lr=3e-3, head_lr=1e-2, patience=6, head_epochs=1)
    result = finetune(
        model, make_weighting("fixed", TASKS), task_data, config, torch.device("cpu"), progress=False
    )
    assert len(result.history) == 6 and 1 <= result.best_epoch <= 6
    assert result.history[-1]["loss_next"] < result.history[0]["loss_next"]
    trained = validation_metrics(model, task_data)
    trivial = task_metrics(trivial_predictions(task_data, "valid"), task_data.targets("valid"))
    assert trained["rating_rmse"] < 0.75 * trivial["rating_rmse"]
    assert trained["like_auc"] > 0.8 and trivial["like_auc"] == 0.5
    assert trained["genre_auc"] > 0.7 and trivial["genre_auc"] == pytest.approx(0.5, abs=0.05)
    assert trained["profile_gender_accuracy"] > 0.75 > 0.6 > trivial["profile_gender_accuracy"]  # 16 users


def test_refitting_auxiliary_heads_never_moves_next_item_scores(
    encoder_dir: Path, task_data: TaskData
) -> None:
    from mtrec_helpers.multitask.finetune import FinetuneObjective, train_only
    from mtrec_helpers.multitask.weighting import FixedWeights

    model = _model(encoder_dir, task_data, sharing="mmoe")
    batch = task_data.split_batch(np.arange(25), "test", MAX_LEN)
    before = _outputs(model, batch)
    examples = task_data.train_windows(MAX_LEN)[:64]
    cpu = torch.device("cpu")
    objective = FinetuneObjective(task_data, examples, 32, cpu, FixedWeights(model.config.tasks))
    model.train()
    config = finetune_config(head_lr=1e-2, epochs=10, lr=5e-4, patience=3, batch_size=128)
    train_only(model, model.aux_head_parameters(), objective, config, 1, torch.Generator().manual_seed(0))
    model.eval()
    after = _outputs(model, batch)
    torch.testing.assert_close(after["next"], before["next"])
    assert not torch.allclose(after["rating"], before["rating"])
    assert all(p.requires_grad for p in model.parameters())  # nothing left frozen


def test_refitting_the_heads_skips_the_next_item_loss_with_the_same_gradients_to_the_last_bit(
    encoder_dir: Path, task_data: TaskData
) -> None:
    model = _model(encoder_dir, task_data, sharing="mmoe")
    batch = task_data.batch(task_data.train_windows(MAX_LEN)[:32], False, task_data.profile_users("train"))
    full, full_losses = head_gradients(model, batch, without_next=False)
    heads, losses = head_gradients(model, batch, without_next=True)
    assert float(full_losses["next"]) > 1.0 and float(losses["next"]) == 0.0
    assert all(torch.equal(a, b) for a, b in zip(full, heads, strict=True)) and len(full) > 5
    assert all(torch.equal(full_losses[t], losses[t]) for t in TASKS if t != "next")


def test_candidate_outputs_match_the_heads_on_the_target(encoder_dir: Path, task_data: TaskData) -> None:
    model = _model(encoder_dir, task_data, sharing="mmoe")
    batch = task_data.split_batch(np.arange(15), "test", MAX_LEN)
    targets = batch.next_item[:, -1:]
    with torch.no_grad():
        per_target = model.task_outputs(batch)
        candidates = model.candidate_outputs(batch, torch.cat([targets, targets.flip(0)], dim=1))
    assert candidates["rating"].shape == (15, 2)
    torch.testing.assert_close(candidates["rating"][:, 0], per_target["rating"])
    torch.testing.assert_close(candidates["like"][:, 0], per_target["like"])


def test_retrieval_returns_unseen_items_best_first(encoder_dir: Path, task_data: TaskData) -> None:
    from mtrec_helpers.rl.retrieval import retrieve

    model = _model(encoder_dir, task_data)
    table = retrieve(model, task_data, n=8)
    n_users = task_data.data.n_users
    assert table.items.shape == table.like.shape == table.rating.shape == (n_users, 8)
    assert (table.scores[:, :-1] >= table.scores[:, 1:]).all()
    histories = task_data.data.sequences("valid")
    assert all(not set(table.items[u].tolist()) & set(histories[u].tolist()) for u in range(n_users))
    assert ((table.like > 0) & (table.like < 1)).all()
    history = torch.zeros(2, task_data.data.n_items + 2)
    history[0, table.items[0, 0]] = 1.0
    items, scores = table.lookup(torch.tensor([0, 1]), history)
    assert scores[0, 0] == -torch.inf and torch.isfinite(scores[1]).all()


def test_tasks_without_labels_are_skipped_with_the_reason(task_data: TaskData) -> None:
    """A release without user profiles (ml-latest-small, ml-20m, ml-25m) or without genres skips
    those heads instead of crashing on an empty label column."""
    assert task_data.available_tasks(TASKS) == (TASKS, {})
    data = task_data.data
    users = data.users.assign(age_bucket_idx=-1, gender_idx=-1, occupation_idx=-1)
    items = data.items.assign(genres=[[] for _ in range(len(data.items))])
    manifest = {**data.manifest, "has_user_profile": False}
    bare = TaskData(dataclasses.replace(data, users=users, items=items, manifest=manifest), seed=0)
    kept, skipped = bare.available_tasks(TASKS)
    assert kept == ("next", "rating", "like")
    assert skipped == {
        "genre": "no item in this dataset has a genre",
        "profile": "this dataset has no user profiles (age group, gender, occupation)",
    }
    trivial = task_metrics(trivial_predictions(bare, "test", kept), bare.targets("test"))
    assert set(trivial) == {"rating_rmse", "rating_mae", "like_auc", "like_logloss"}
    with pytest.raises(ValueError, match="no next-item task"):
        bare.available_tasks(["genre"])


@pytest.mark.parametrize("strategy", ["dwa", "gradnorm"])
def test_interrupted_finetuning_resumes_to_the_same_model(
    encoder_dir: Path, task_data: TaskData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str
) -> None:
    """Notebook 03 re-run after an interruption continues each configuration from its last
    checkpoint — the weighting's own state (DWA's loss history, GradNorm's optimizer) included — and
    ends with exactly the model an uninterrupted run gives."""
    from mtrec_helpers.multitask import finetune as finetuning
    from mtrec_helpers.multitask.weighting import make_weighting

    config = finetune_config(epochs=4, patience=4, head_epochs=1, refit_epochs=1, batch_size=64, lr=1e-3)
    options = {"every": 2} if strategy == "gradnorm" else {}

    def run(folder: Path) -> tuple[FinetuneResult, MultiTaskModel]:
        torch.manual_seed(0)
        model = build_multitask(encoder_dir, task_data, TASKS)
        weighting = make_weighting(strategy, model.config.tasks, **options)
        return finetuning.finetune(model, weighting, task_data, config, CPU, False, strategy, folder), model

    whole, whole_model = run(tmp_path / "whole")
    interrupt_on_call(monkeypatch, finetuning, "validation_metrics", 3)
    with pytest.raises(Interrupted):
        run(tmp_path / "cut")
    validations = count_calls(monkeypatch, finetuning, "validation_metrics")
    resumed, resumed_model = run(tmp_path / "cut")
    assert len(validations) == 3, "epochs 1-2 came from the checkpoint; 3, 4 and the refit were run"
    assert resumed.history == whole.history and resumed.refit == whole.refit
    for name, value in whole_model.state_dict().items():
        assert torch.equal(value, resumed_model.state_dict()[name]), name


def test_genre_threshold_f1_from_one_sort_equals_sklearn_at_every_threshold() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    labels = rng.random((300, 7)) < 0.2
    probabilities = np.round(np.clip(0.3 * labels + rng.random((300, 7)) * 0.7, 0, 1), 2).astype(np.float32)
    vectorised = threshold_f1(probabilities, labels)  # rounding makes ties at the thresholds
    looped = [f1_score(labels.ravel(), probabilities.ravel() >= t, zero_division=0) for t in THRESHOLDS]
    assert vectorised.tolist() == looped
    assert threshold_f1(probabilities, np.zeros_like(labels)).max() == 0.0


def test_one_pass_gives_next_item_ranks_and_head_predictions_on_a_validation_sample(
    encoder_dir: Path, task_data: TaskData
) -> None:
    model = _model(encoder_dir, task_data)
    data = task_data.data
    ranker = Ranker(data, "test")
    predictions = predict(model, task_data, "test", ranker=ranker)
    alone = evaluate(multitask_scorer(model, task_data, "test"), data, "test")
    assert np.array_equal(ranker.result().ranks, alone.ranks)
    sample = np.arange(1, task_data.data.n_users, 2)
    full, part = validation_metrics(model, task_data), validation_metrics(model, task_data, sample)
    subset = predict(model, task_data, "valid", sample)
    assert np.allclose(subset["rating"], predict(model, task_data, "valid")["rating"][sample], atol=1e-6)
    assert len(predictions["rating"]) == data.n_users and len(subset["rating"]) == len(sample)
    ranks = evaluate(multitask_scorer(model, task_data, "valid"), data, "valid", users=sample)
    assert part["ndcg@10"] == pytest.approx(float(ranks.ndcg(10).mean()))
    assert part["rating_rmse"] != full["rating_rmse"]


def test_runs_trained_side_by_side_equal_runs_trained_one_after_another_to_the_last_bit(
    encoder_dir: Path, task_data: TaskData, tmp_path: Path
) -> None:
    import functools
    import shutil

    from mtrec_helpers.core.paths import notebooks_dir
    from mtrec_helpers.course.parameters import declared_parameters
    from mtrec_helpers.multitask.settings import MultitaskSettings, run_plan, train_experiment

    cell = declared_parameters(notebooks_dir() / "03_multitask_finetuning.ipynb")
    cell.update(TASKS=["next", "rating"], EPOCHS=2, MAX_STEPS=3, BATCH_SIZE=32, HEAD_EPOCHS=1,
                REFIT_EPOCHS=1, N_BOOT=20, AUX_LAMBDAS=[0.3], ADAPTIVE=[], USER_TEXT=False)  # fmt: skip
    settings = MultitaskSettings.of(cell)
    outcomes = []
    for workers in (1, 2):
        artifacts = tmp_path / f"workers{workers}"
        shutil.copytree(encoder_dir, artifacts / "pretrained" / "causal")
        cpu = torch.device("cpu")
        train = functools.partial(train_experiment, settings=settings, task_data=task_data, device=cpu)
        train = functools.partial(train, artifacts=artifacts)
        outcomes.append(run_plan(settings, settings.tasks, train, {}, ["single", "sweep"], workers))
        phases = sorted(p.parent.relative_to(artifacts).as_posix() for p in artifacts.rglob("checkpoint"))
        expected = [f"{n}{p}" for n in sorted(outcomes[-1]) for p in ("", "/heads", "/refit")]
        assert phases == [f"multitask/runs/{e}" for e in expected if e != "single_next/refit"]  # no aux head
    serial, parallel = outcomes
    assert list(serial) == list(parallel) == ["single_next", "single_rating", "fixed_aux=0.3"]
    for name, outcome in serial.items():
        timed = {"train_seconds"}  # the one difference: wall time
        assert {k: v for k, v in outcome.test.items() if k not in timed} == {
            k: v for k, v in parallel[name].test.items() if k not in timed
        }, name
        assert outcome.training.history == parallel[name].training.history, name
        weights, others = outcome.model.state_dict(), parallel[name].model.state_dict()
        assert all(torch.equal(weights[k], others[k]) for k in weights), name
