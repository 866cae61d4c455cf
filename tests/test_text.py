"""Notebook 02b's parts: item texts, the encoder and its cache, the text-aware model, the cold-start
protocol and the content-only baseline."""

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

from mtrec_helpers.data.store import ProcessedData, prepare_dataset
from mtrec_helpers.data.synthetic import SyntheticConfig
from mtrec_helpers.pretraining.models import build_config
from mtrec_helpers.pretraining.sequences import causal_batch
from mtrec_helpers.text.coldstart import cold_start_split, long_tail_items, long_tail_users, train_popularity
from mtrec_helpers.text.content import content_scorer, user_profiles
from mtrec_helpers.text.encoder import DEFAULT_TEXT_MODEL, embed_texts, model_folder, pool
from mtrec_helpers.text.items import item_text, item_texts, natural_title
from mtrec_helpers.text.models import TextAwareConfig, TextAwareModel, choose_id_dropout


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


def _text_model(text: np.ndarray, delta: float = 0.5, id_dropout: float = 0.0) -> TextAwareModel:
    torch.manual_seed(0)
    base = build_config(len(text) - 2, "causal", hidden=16, layers=1, heads=2, max_len=10, dropout=0.0)
    config = TextAwareConfig.of(base, text.shape[1], delta, id_dropout)
    model = TextAwareModel(config)
    model.set_item_text(text)
    return model


def test_text_aware_items_start_at_their_projected_text_and_keep_the_delta_bounded() -> None:
    text = F.normalize(torch.randn(12, 8), dim=-1).numpy()
    model = _text_model(text)
    items = torch.arange(1, 11)
    projected = model.text_projection(torch.from_numpy(text)[items])
    torch.testing.assert_close(model.item_embeddings(items), projected)  # δ starts at zero
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight.normal_(0, 10.0)  # a huge δ
    delta = model.item_embeddings(items) - projected
    assert torch.all(delta.norm(dim=-1) <= 0.5 * projected.norm(dim=-1) + 1e-5)
    hidden = torch.randn(3, 16)
    table = model.item_embeddings(torch.arange(12))
    expected = model.cls.predictions.transform(hidden) @ table.T + model.cls.predictions.bias
    torch.testing.assert_close(model.scores(hidden), expected)  # the output layer is text-aware too


def test_id_dropout_scores_dropped_items_by_their_text_alone() -> None:
    text = F.normalize(torch.randn(12, 8), dim=-1).numpy()
    model = _text_model(text, id_dropout=0.4)
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight.normal_(0, 1.0)
        model.cls.predictions.bias.normal_(0, 1.0)
        model.text_bias.weight.normal_(0, 1.0)
    items = torch.arange(12)
    text_part = model.text_projection(model.item_text)
    text_bias = model.text_bias(model.item_text).squeeze(-1)
    torch.testing.assert_close(model.item_bias(items), text_bias + model.cls.predictions.bias)
    model.eval()
    assert model.id_keep() is None  # evaluation never drops
    model.train()
    torch.manual_seed(1)
    keeps = torch.stack([model.id_keep() for _ in range(500)])
    assert keeps.shape == (500, 12) and abs(1 - keeps.float().mean().item() - 0.4) < 0.02
    keep = keeps[0]
    dropped = ~keep
    torch.testing.assert_close(model.item_embeddings(items, keep)[dropped], text_part[dropped])
    torch.testing.assert_close(model.item_bias(items, keep)[dropped], text_bias[dropped])
    torch.testing.assert_close(model.item_embeddings(items, keep)[keep], model.item_embeddings(items)[keep])
    hidden = torch.randn(3, 16)
    torch.testing.assert_close(model.scores(hidden, keep=keep)[:, keep], model.scores(hidden)[:, keep])
    assert not torch.allclose(model.scores(hidden, keep=keep)[:, dropped], model.scores(hidden)[:, dropped])


def test_withheld_items_leave_the_softmax_and_get_no_gradient() -> None:
    text = F.normalize(torch.randn(12, 8), dim=-1).numpy()
    model = _text_model(text)
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
    delta_grad = model.bert.embeddings.word_embeddings.weight.grad
    assert delta_grad[[8, 9]].abs().sum() == 0 and delta_grad[[1, 2]].abs().sum() > 0


def test_cold_start_split_withholds_items_from_training_only(data: ProcessedData) -> None:
    split = cold_start_split(data, share=0.2, seed=3)
    assert len(split.cold_items) == round(0.2 * data.n_items) and split.exclude.sum() == len(split.cold_items)
    train = split.data.interactions[split.data.interactions["split"] == "train"]
    assert not np.isin(train["item_idx"], split.cold_items).any()
    for held in ("valid", "test"):
        np.testing.assert_array_equal(split.data.targets(held), data.targets(held))
    assert split.data.manifest["fingerprint"] != data.manifest["fingerprint"]
    cold = split.cold_users("test")
    assert np.isin(data.targets("test")[cold], split.cold_items).all()
    assert np.array_equal(cold_start_split(data, share=0.2, seed=3).cold_items, split.cold_items)
    with pytest.raises(ValueError, match="COLD_SHARE"):
        cold_start_split(data, share=1.0)


def test_cold_validation_ndcg_ranks_only_the_users_with_a_cold_validation_item(data: ProcessedData) -> None:
    split = cold_start_split(data, share=0.2, seed=3)
    users = split.cold_users("valid")
    assert 0 < len(users) < data.n_users
    targets = torch.tensor(data.targets("valid"))

    def oracle(rows: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:  # the held-out item first
        scores = torch.zeros(len(rows), data.n_items + 2)
        scores[torch.arange(len(rows)), targets[torch.as_tensor(rows)]] = 1.0
        return scores

    assert split.valid_ndcg(oracle) == pytest.approx(1.0)
    # an oracle only for the users whose validation item is warm scores zero on the cold ones
    cold = torch.zeros(data.n_users, dtype=torch.bool)
    cold[torch.from_numpy(users)] = True
    warm_only = lambda rows, h: oracle(rows, h) * ~cold[torch.as_tensor(rows)].unsqueeze(1)  # noqa: E731
    assert split.valid_ndcg(warm_only) == 0.0
    none = dataclasses.replace(split, cold_items=np.array([], dtype=np.int64))
    assert math.isnan(none.valid_ndcg(oracle))


def test_id_dropout_is_chosen_on_validation_and_no_score_never_wins() -> None:
    assert choose_id_dropout({0.0: 0.11, 0.3: 0.10}) == 0.0
    assert choose_id_dropout({0.0: 0.008, 0.3: 0.019, 0.6: math.nan}) == 0.3
    assert choose_id_dropout({0.3: math.nan, 0.0: math.nan}) == 0.3  # nothing to choose on: the first


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
