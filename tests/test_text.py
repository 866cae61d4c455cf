"""Notebook 02b's parts: item texts, the encoder and its cache, the mapper and the dual path, the
cold-start folds and the content-only baseline."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hostile import Payload
from safetensors.numpy import save_file
from transformers import BertConfig, BertModel

from mtrec_helpers.core.evaluation import RankingResult, evaluate, minimum_detectable_effect, validation_users
from mtrec_helpers.data.store import ProcessedData, prepare_dataset
from mtrec_helpers.data.synthetic import SyntheticConfig
from mtrec_helpers.pretraining.models import SeqRecModel, build_config, scorer
from mtrec_helpers.pretraining.sequences import causal_batch
from mtrec_helpers.text.coldstart import (
    fold_splits,
    item_folds,
    long_tail_items,
    long_tail_users,
    train_popularity,
)
from mtrec_helpers.text.content import content_scorer, genre_decade_features, user_profiles
from mtrec_helpers.text.encoder import DEFAULT_TEXT_MODEL, embed_texts, model_folder, pool
from mtrec_helpers.text.items import item_text, item_texts, natural_title
from mtrec_helpers.text.mapping import (
    MapperConfig,
    Positions,
    item_rows,
    positions_read,
    train_mapper,
    training_positions,
    with_mapped_items,
)
from mtrec_helpers.text.protocol import (
    choose_on_validation,
    choose_prior,
    fit_mappers,
    fold_rankings,
    mean_ndcg,
    pooled,
)
from mtrec_helpers.text.report import slice_comparisons


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> ProcessedData:
    folder = tmp_path_factory.mktemp("text")
    return prepare_dataset(
        "synthetic", folder, min_interactions=3, synthetic=SyntheticConfig(n_users=60, n_items=80)
    )


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT with MiniLM's tokenizer: a real folder, fast to run."""
    folder = tmp_path_factory.mktemp("tiny-encoder")
    source = model_folder(DEFAULT_TEXT_MODEL)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(source / name, folder / name)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32)  # fmt: skip
    BertModel(config).save_pretrained(folder)
    return folder


def test_item_text_reads_like_prose() -> None:
    assert natural_title("Usual Suspects, The (1995)") == "The Usual Suspects (1995)"
    assert natural_title("Cité des enfants perdus, La (1995)") == "La Cité des enfants perdus (1995)"
    assert natural_title("Toy Story (1995)") == "Toy Story (1995)"
    text = item_text("Matrix, The (1999)", 1999, ["Action", "Sci-Fi"], ["cyberpunk"], ["virtual reality"])
    assert text == "The Matrix (1999). Genres: Action, Sci-Fi. Tags: cyberpunk. Themes: virtual reality."
    assert item_text("Synthetic item 3", 1961, [], [], []) == "Synthetic item 3 (1961)."


def test_item_texts_follow_the_item_index(data: ProcessedData) -> None:
    texts = item_texts(data)
    assert len(texts) == data.n_items + 2 and texts[0] == "" and texts[-1] == ""
    row = data.items.iloc[5]
    assert texts[int(row["item_idx"])].startswith(str(row["title"]))
    themed = dataclasses.replace(data, items=data.items.assign(genome=[["time travel"]] * len(data.items)))
    assert "Themes: time travel" not in item_texts(themed)[int(row["item_idx"])]  # interaction data: opt-in
    assert "Themes: time travel" in item_texts(themed, genome=True)[int(row["item_idx"])]


def test_pooling_ignores_padding_and_normalises() -> None:
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(pool(hidden, mask, "mean"), F.normalize(torch.tensor([[2.0, 2.0]]), dim=-1))
    torch.testing.assert_close(pool(hidden, mask, "cls"), torch.tensor([[1.0, 0.0]]))


def test_embeddings_are_cached_by_model_files_and_texts(tiny_encoder: Path, tmp_path: Path) -> None:
    texts = ["a dark thriller about memory", "a light comedy", "a"]
    first = embed_texts(texts, str(tiny_encoder), tmp_path)
    assert not first.cached and first.vectors.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, rtol=1e-5)
    again = embed_texts(texts, str(tiny_encoder), tmp_path)
    assert again.cached and again.key == first.key and np.array_equal(again.vectors, first.vectors)
    batch_of_one = embed_texts(texts[:1], str(tiny_encoder), None)  # padding does not change a vector
    np.testing.assert_allclose(batch_of_one.vectors[0], first.vectors[0], atol=1e-5)
    assert embed_texts(texts[::-1], str(tiny_encoder), tmp_path).key != first.key
    original = (tiny_encoder / "config.json").read_text()
    (tiny_encoder / "config.json").write_text(json.dumps({**json.loads(original), "layer_norm_eps": 1e-6}))
    try:  # other model files: another key, never the old vectors
        assert embed_texts(texts, str(tiny_encoder), tmp_path).key != first.key
    finally:
        (tiny_encoder / "config.json").write_text(original)
    cache = tmp_path / f"{first.key[:24]}.safetensors"
    cache.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=rf"{cache.name}.*damaged.*Delete it"):
        embed_texts(texts, str(tiny_encoder), tmp_path)


@pytest.mark.parametrize(
    ("plant", "problem"),
    [
        ("other model", "model 'another/model'"),
        ("narrow", "float32 (3, 32), expected float32 (3, 16)"),
        ("nan", "NaN or infinite values"),
        ("float64", "float64 (3, 16)"),
        ("not unit", "not unit length"),
    ],
)
def test_a_cache_that_is_not_this_runs_is_refused(
    tiny_encoder: Path, tmp_path: Path, plant: str, problem: str
) -> None:
    """A cache file is checked for its key, model, model files, width, dtype, finiteness and unit length:
    random vectors labelled as another model used to be used as they were (02b retrained on them)."""
    texts = ["a dark thriller about memory", "a light comedy", "a"]
    first = embed_texts(texts, str(tiny_encoder), tmp_path)
    cache = tmp_path / f"{first.key[:24]}.safetensors"
    metadata = {"model": str(tiny_encoder), "files_hash": first.files_hash, "key": first.key}
    vectors = np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    if plant == "other model":
        metadata["model"] = "another/model"
    elif plant == "narrow":
        vectors = np.full((3, 32), 1 / np.sqrt(32), np.float32)
    elif plant == "nan":
        vectors[:] = np.nan
    elif plant == "float64":
        vectors = vectors.astype(np.float64)
    else:
        vectors *= 2
    save_file({"vectors": vectors}, str(cache), metadata=metadata)
    with pytest.raises(ValueError) as caught:
        embed_texts(texts, str(tiny_encoder), tmp_path)
    message = str(caught.value)
    assert (
        message.startswith(f"{cache}: the embedding cache is damaged or not this run's")
        and problem in message
    )
    assert message.endswith("Delete it and run again.")


def test_text_models_load_from_safetensors_only(tiny_encoder: Path, tmp_path: Path) -> None:
    """A pytorch_model.bin is a pickle: it is never loaded (torch's refusal named no file); the error
    names the folder and what to give instead."""
    folder = tmp_path / "pickled-model"
    shutil.copytree(tiny_encoder, folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "payload-ran"
    torch.save({"weights": Payload(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(ValueError) as caught:
        embed_texts(["a film"], str(folder), None)
    assert not marker.exists()
    assert f"TEXT_MODEL={str(folder)!r}: {folder} has no weights in safetensors format" in str(caught.value)


def test_the_packaged_minilm_puts_similar_films_together() -> None:
    texts = [
        "A space opera: rebels, an evil empire, jedi knights and lightsabers.",
        "Star Wars (1977). Genres: Action, Adventure, Sci-Fi.",
        "Sense and Sensibility (1995). Genres: Drama, Romance.",
    ]
    vectors = embed_texts(texts, DEFAULT_TEXT_MODEL, None).vectors
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1


def _planted_model(n_items: int = 40, hidden: int = 8, dim: int = 12, seed: int = 0):
    """A tiny 02 model whose item rows are a planted linear function of item features X: e = X M, b = X v."""
    generator = torch.Generator().manual_seed(seed)
    model = SeqRecModel(
        build_config(n_items, "causal", hidden=hidden, layers=1, heads=2, max_len=10, dropout=0.0)
    )
    features = torch.randn(n_items + 2, dim, generator=generator)
    features[[0, -1]] = 0.0
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight.copy_(
            features @ torch.randn(dim, hidden, generator=generator)
        )
        model.cls.predictions.bias.copy_(features @ torch.randn(dim, generator=generator) * 0.5)
    return model.eval(), features.numpy()


def _planted_positions(model: SeqRecModel, exclude: torch.Tensor, n: int = 4000) -> Positions:
    """States and next items drawn from the planted model's own softmax over the non-excluded items."""
    generator = torch.Generator().manual_seed(1)
    states = torch.randn(n, model.config.hidden_size, generator=generator)
    embeddings, biases = item_rows(model)
    logits = (states @ embeddings.T + biases).masked_fill(exclude, float("-inf"))
    return Positions(states, torch.multinomial(torch.softmax(logits, 1), 1, generator=generator).squeeze(1))


def test_the_mapper_recovers_the_rows_of_items_it_never_saw() -> None:
    model, features = _planted_model()
    cold = torch.arange(31, 41)
    exclude = torch.zeros(42, dtype=torch.bool)
    exclude[[0, 41]] = True
    exclude[cold] = True
    positions = _planted_positions(model, exclude)
    mapper = train_mapper(
        features, model, positions, exclude, MapperConfig(epochs=30, lr=3e-2, batch_size=500)
    )
    embeddings, biases = item_rows(model)
    with torch.no_grad():
        mapped = mapper(torch.as_tensor(features))
    truth = positions.states[:200] @ embeddings[cold].T + biases[cold]
    guess = positions.states[:200] @ mapped[cold, :-1].T + mapped[cold, -1]
    # the cold items were never a target nor in the softmax, yet their scores come back from their features
    assert np.corrcoef(truth.flatten(), guess.flatten())[0, 1] > 0.9
    assert (guess - truth).abs().mean() < 0.5 * truth.abs().mean()


def test_a_step_budget_caps_the_mapper_batches_and_no_budget_is_every_batch() -> None:
    model, features = _planted_model()
    exclude = torch.zeros(42, dtype=torch.bool)
    exclude[[0, 41]] = True
    positions = _planted_positions(model, exclude, n=1000)

    def weights(max_batches: int) -> torch.Tensor:
        config = MapperConfig(epochs=2, batch_size=250, max_batches=max_batches)
        return train_mapper(features, model, positions, exclude, config).weight.detach()

    assert torch.equal(weights(0), weights(4))  # 4 batches per epoch: the budget does not bind
    assert not torch.equal(weights(0), weights(1))


def test_under_a_step_budget_only_the_positions_the_mappers_read_are_encoded_and_learn_the_same() -> None:
    model, features = _planted_model()
    generator = np.random.default_rng(0)
    sequences = [generator.integers(1, 41, size=n) for n in [3, 30, 8, 1, 12, 25] * 5]
    config = MapperConfig(epochs=2, batch_size=16, max_batches=2)
    every = training_positions(model, sequences)
    read = positions_read(features.shape[1], model.config.hidden_size, len(every), len(features), config)
    assert 0 < len(read) <= 2 * 2 * 16 < len(every)  # two epochs of two batches of 16
    part = training_positions(model, sequences, read=read)
    assert len(part) == len(every) and len(part.targets) == len(read)
    torch.testing.assert_close(part.states, every.states[read])
    assert torch.equal(part.targets, every.targets[read])
    exclude = torch.zeros(42, dtype=torch.bool)
    exclude[[0, 41]] = True
    budgeted = fit_mappers(model, sequences, None, {"x": features}, config)["x"]  # encodes only `read`
    torch.testing.assert_close(budgeted.weight, train_mapper(features, model, every, exclude, config).weight)
    assert budgeted.weight.abs().sum() > 0


def test_mapped_rows_replace_only_items_without_evidence_unless_a_prior_lends_text() -> None:
    model, features = _planted_model()
    mapper = torch.nn.Linear(features.shape[1], model.config.hidden_size + 1)
    counts = np.zeros(42, dtype=np.int64)
    counts[1:21] = 100
    counts[21:31] = 3  # items 31..40 never seen
    before, bias_before = item_rows(model)
    untouched = with_mapped_items(model, mapper, features, counts, prior=0.0)
    rows, biases = item_rows(untouched)
    with torch.no_grad():
        mapped = mapper(torch.as_tensor(features))
    torch.testing.assert_close(rows[:31], before[:31])  # PAD and every trained item: exactly the id rows
    torch.testing.assert_close(biases[:31], bias_before[:31])
    torch.testing.assert_close(rows[31:41], mapped[31:41, :-1])  # new items: the mapper's rows
    torch.testing.assert_close(biases[31:41], mapped[31:41, -1])
    torch.testing.assert_close(rows[41], before[41])  # MASK is not an item
    lent = item_rows(with_mapped_items(model, mapper, features, counts, prior=3.0))[0]
    torch.testing.assert_close(lent[25], 0.5 * before[25] + 0.5 * mapped[25, :-1])  # n = k: half and half
    torch.testing.assert_close(lent[5], 100 / 103 * before[5] + 3 / 103 * mapped[5, :-1])
    torch.testing.assert_close(item_rows(model)[0], before)  # the id model itself is never changed


def test_training_positions_are_the_states_the_output_layer_scores() -> None:
    model, _ = _planted_model()
    sequences = [
        np.array([1, 2, 3, 4]),
        np.array([5]),
        np.arange(1, 16),
    ]  # the last one is longer than max_len
    positions = training_positions(model, sequences)
    assert len(positions.targets) == 3 + 0 + 10
    np.testing.assert_array_equal(positions.targets[:3].numpy(), [2, 3, 4])
    np.testing.assert_array_equal(positions.targets[3:].numpy(), np.arange(6, 16))
    inputs, labels = causal_batch([sequences[0]])
    hidden, _ = model.encode(inputs)
    rows, columns = torch.nonzero(labels != -100, as_tuple=True)
    embeddings, biases = item_rows(model)
    torch.testing.assert_close(
        positions.states[:3] @ embeddings.T + biases, model.scores(hidden[rows, columns])
    )


def test_item_folds_cover_the_catalogue_and_make_every_user_cold_once(data: ProcessedData) -> None:
    folds = item_folds(data.n_items, 4, seed=3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(1, data.n_items + 1))
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert all(np.array_equal(a, b) for a, b in zip(folds, item_folds(data.n_items, 4, seed=3), strict=True))
    splits = fold_splits(data, 4, seed=3)
    cold_users = np.concatenate([split.cold_users("test") for split in splits])
    assert sorted(cold_users.tolist()) == list(range(data.n_users))  # every user cold in exactly one fold
    for split, items in zip(splits, folds, strict=True):
        np.testing.assert_array_equal(split.cold_items, items)
        assert split.exclude.sum() == len(items) and split.exclude[torch.from_numpy(items)].all()
        train = split.data.interactions[split.data.interactions["split"] == "train"]
        assert not np.isin(train["item_idx"], items).any()
        for held in ("valid", "test"):
            np.testing.assert_array_equal(split.data.targets(held), data.targets(held))
        assert np.isin(data.targets("test")[split.cold_users("test")], items).all()
    assert len({split.data.manifest["fingerprint"] for split in splits} | {data.manifest["fingerprint"]}) == 5
    with pytest.raises(ValueError, match="COLD_FOLDS=1"):
        item_folds(data.n_items, 1)


def test_fold_rankings_rank_only_the_folds_cold_users_as_a_ranking_of_everyone_would(
    data: ProcessedData,
) -> None:
    torch.manual_seed(0)
    model = SeqRecModel(build_config(data.n_items, "causal", hidden=8, layers=1, max_len=20)).eval()
    split = fold_splits(data, 4, seed=3)[1]
    content = content_scorer(np.random.default_rng(0).normal(size=(data.n_items + 2, 5)), 3)
    rankings = fold_rankings({"id_only": model}, split, content)
    for s in ("valid", "test"):
        cold = split.cold_users(s)
        assert 0 < len(cold) < data.n_users
        for name, ranking in rankings[s].items():
            score = content if name == "content_only" else scorer(model)
            everyone = evaluate(score, split.data, s).select(cold)
            np.testing.assert_array_equal(ranking.ranks, everyone.ranks)
            np.testing.assert_array_equal(ranking.top, everyone.top)
    sample = validation_users(data.n_users, data.n_users // 2, seed=0)  # VALID_USERS below the user count
    sampled = fold_rankings({"id_only": model}, split, content, valid_sample=sample)
    in_sample = np.isin(split.cold_users("valid"), sample)
    assert 0 < in_sample.sum() < len(in_sample)
    for name, ranking in sampled["valid"].items():  # validation: the fold's cold users in the sample
        np.testing.assert_array_equal(ranking.ranks, rankings["valid"][name].select(in_sample).ranks)
    for name, ranking in sampled["test"].items():  # test: never sampled
        np.testing.assert_array_equal(ranking.ranks, rankings["test"][name].ranks)


def test_pooled_folds_join_each_folds_cold_users_and_compare_with_the_mde() -> None:
    def ranking(ranks: list[int]) -> RankingResult:
        return RankingResult(np.array(ranks), np.zeros((len(ranks), 10), dtype=np.int64), 50, "test", True)

    per_fold = [{s: {"a": ranking([0, 20]), "b": ranking([5, 20])} for s in ("valid", "test")},
                {s: {"a": ranking([1]), "b": ranking([30])} for s in ("valid", "test")}]  # fmt: skip
    joined = pooled(per_fold)["test"]
    np.testing.assert_array_equal(joined["a"].ranks, [0, 20, 1])
    np.testing.assert_array_equal(joined["b"].ranks, [5, 20, 30])
    record = slice_comparisons(joined, "a", ["b"], n_boot=200)["a_vs_b"]
    differences = joined["a"].ndcg(10) - joined["b"].ndcg(10)
    assert record["ndcg@10_diff"] == pytest.approx(differences.mean())
    assert record["ndcg@10_mde"] == pytest.approx(minimum_detectable_effect(differences))
    assert mean_ndcg(joined["a"]) == pytest.approx(joined["a"].ndcg(10).mean())


def test_choices_are_made_on_validation_and_no_score_never_wins() -> None:
    assert choose_on_validation({0.0: 0.11, 0.3: 0.10}) == 0.0
    assert choose_on_validation({"text": 0.008, "text+genres": 0.019, "genres": math.nan}) == "text+genres"
    assert choose_on_validation({0.3: math.nan, 0.0: math.nan}) == 0.3  # nothing to choose on: the first


def test_genre_decade_features_are_one_hot_decades_beside_the_genres() -> None:
    genres = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    features = genre_decade_features(genres, np.array([0, 2, 1]))
    np.testing.assert_array_equal(features, [[1, 0, 1, 0, 0], [0, 1, 0, 0, 1], [1, 1, 0, 1, 0]])


def test_long_tail_is_the_least_popular_fifth(data: ProcessedData) -> None:
    tail = long_tail_items(data)
    counts = train_popularity(data)
    assert len(tail) == round(0.2 * data.n_items)
    rest = np.setdiff1d(np.arange(1, data.n_items + 1), tail)
    assert counts[tail].max() <= counts[rest].min()
    assert np.isin(data.targets("test")[long_tail_users(data)], tail).all()


def test_content_scores_are_cosines_to_the_recent_history() -> None:
    vectors = F.normalize(torch.randn(7, 5), dim=-1).numpy()
    histories = [np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)]
    profiles = user_profiles(torch.from_numpy(vectors), histories, window=2)
    torch.testing.assert_close(profiles[0], F.normalize(torch.from_numpy(vectors[2] + vectors[3]), dim=0))
    assert profiles[2].abs().sum() == 0
    scores = content_scorer(vectors, window=2)(np.arange(3), histories)
    torch.testing.assert_close(scores[1], torch.from_numpy(vectors) @ torch.from_numpy(vectors[4]))


def test_the_prior_moves_off_zero_only_when_validation_shows_a_paired_gain() -> None:
    def ranking(ranks: np.ndarray) -> RankingResult:
        return RankingResult(ranks, np.zeros((len(ranks), 10), dtype=np.int64), 50, "valid", True)

    rng = np.random.default_rng(0)
    base = rng.integers(0, 30, 300)
    same_mean = np.roll(base, 1)  # a reshuffle: the same mean, no paired gain
    better = np.where(rng.random(300) < 0.3, 0, base)  # a third of the users get their item first
    assert choose_prior({0.0: ranking(base), 1.0: ranking(same_mean)}, n_boot=300) == 0.0
    candidates = {0.0: ranking(base), 1.0: ranking(same_mean), 4.0: ranking(better)}
    assert choose_prior(candidates, n_boot=300) == 4.0
    with pytest.raises(ValueError, match="PRIORS"):
        choose_prior({1.0: ranking(base)})


def test_withheld_items_leave_the_softmax_and_get_no_gradient() -> None:
    torch.manual_seed(0)
    model = SeqRecModel(build_config(10, "causal", hidden=16, layers=1, heads=2, max_len=10, dropout=0.0))
    inputs, labels = causal_batch([np.array([1, 2, 3, 4, 5]), np.array([2, 6, 7])])
    exclude = torch.zeros(12, dtype=torch.bool)
    exclude[[8, 9]] = True
    loss = model.loss(inputs, labels, exclude)
    hidden, _ = model.encode(inputs)
    rows, positions = torch.nonzero(labels != -100, as_tuple=True)
    logits = model.scores(hidden[rows, positions])
    kept = torch.nonzero(~exclude).squeeze(1)
    remap = torch.full((12,), -1).scatter_(0, kept, torch.arange(len(kept)))
    torch.testing.assert_close(loss, F.cross_entropy(logits[:, kept], remap[labels[rows, positions]]))
    loss.backward()
    grad = model.bert.embeddings.word_embeddings.weight.grad
    assert grad[[8, 9]].abs().sum() == 0 and grad[[1, 2]].abs().sum() > 0
    assert model.cls.predictions.bias.grad[[8, 9]].abs().sum() == 0
