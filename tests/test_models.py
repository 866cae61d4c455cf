"""The sequential recommender: tied output layer, causal vs bidirectional attention, positions,
side information, and a save_pretrained / from_pretrained round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mtrec_helpers.core.stages import ArtifactError
from mtrec_helpers.data import SyntheticConfig, prepare_dataset
from mtrec_helpers.pretraining.artifacts import load_recommender, save_recommender
from mtrec_helpers.pretraining.models import (
    SeqRecModel,
    attention_weights,
    build_config,
    catalogue_scores,
)

N_ITEMS = 30


def _model(objective: str, side_info: bool = False, seed: int = 0) -> SeqRecModel:
    torch.manual_seed(seed)
    config = build_config(N_ITEMS, objective, hidden=16, layers=2, heads=2, max_len=12, dropout=0.0,
                          side_info=side_info, n_genres=4, n_year_buckets=5)  # fmt: skip
    model = SeqRecModel(config).eval()
    if side_info:
        rng = np.random.default_rng(seed)
        model.set_side_information(rng.random((N_ITEMS + 2, 4)) > 0.5, rng.integers(0, 6, N_ITEMS + 2))
    return model


def test_output_layer_is_tied_to_item_embeddings() -> None:
    model = _model("causal")
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight


def test_causal_positions_never_see_the_future() -> None:
    model = _model("causal")
    items = torch.tensor([[0, 0, 3, 4, 5, 6]])
    changed = items.clone()
    changed[0, -1] = 9
    with torch.no_grad():
        before, _ = model.encode(items)
        after, _ = model.encode(changed)
    assert torch.allclose(before[0, :-1], after[0, :-1], atol=1e-6)
    assert not torch.allclose(before[0, -1], after[0, -1])


def test_masked_positions_see_both_sides() -> None:
    model = _model("masked")
    items = torch.tensor([[3, 4, 5, 6]])
    changed = items.clone()
    changed[0, -1] = 9
    with torch.no_grad():
        before, _ = model.encode(items)
        after, _ = model.encode(changed)
    assert not torch.allclose(before[0, 0], after[0, 0])


def test_next_item_inputs() -> None:
    history = np.arange(1, 21)
    causal = _model("causal").next_item_inputs([history])
    masked = _model("masked").next_item_inputs([history])
    assert causal[0].tolist() == list(range(9, 21))  # the last max_len items
    assert masked[0].tolist() == [*range(10, 21), N_ITEMS + 1]  # the last max_len − 1, then [MASK]


@pytest.mark.parametrize("objective", ["causal", "masked"])
def test_scores_do_not_depend_on_batch_padding(objective: str) -> None:
    model = _model(objective)
    short, long = np.array([4, 5, 6]), np.arange(1, 11)
    with torch.no_grad():
        alone = catalogue_scores(model, [short])
        batched = catalogue_scores(model, [short, long])
        window = model.next_item_inputs([short])
        trimmed, _ = model.encode(window[:, -4:])  # the same input padded to 4 instead of 12
    assert torch.allclose(alone[0], batched[0], atol=1e-5)
    assert torch.allclose(model.scores(trimmed[:, -1])[0], alone[0], atol=1e-5)
    assert alone.shape == (1, N_ITEMS + 2)


def test_side_information_changes_item_embeddings() -> None:
    model = _model("causal", side_info=True)
    items = torch.tensor([1, 2])
    plain = model.bert.embeddings.word_embeddings(items)
    assert not torch.allclose(model.item_embeddings(items), plain)


def test_save_and_restore_without_training_state(tmp_path: Path) -> None:
    data = prepare_dataset(
        "synthetic",
        tmp_path / "a",
        min_interactions=3,
        synthetic=SyntheticConfig(n_users=20, n_items=N_ITEMS),
    )
    model = _model("masked", side_info=True)
    folder = save_recommender(model, tmp_path / "bert4rec", data, {"EPOCHS": 3})
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "model.safetensors",
        "mtrec_params.json",
        "vocab.json",
    ]
    restored, vocab, params = load_recommender(folder)
    histories = [np.array([1, 2, 3]), np.array([7, 8])]
    with torch.no_grad():
        assert torch.allclose(
            catalogue_scores(model, histories), catalogue_scores(restored, histories), atol=1e-6
        )
    assert torch.equal(restored.item_genres, model.item_genres)
    assert restored.config.objective == "masked" and params == {"EPOCHS": 3}
    assert vocab["item_ids"][1] == int(data.items["item_id"].iloc[0]) and vocab["mask"] == N_ITEMS + 1
    with pytest.raises(ArtifactError, match="saved model .config.json. is missing"):
        load_recommender(tmp_path / "missing")
    with pytest.raises(ArtifactError, match="02_transformer_pretraining"):
        load_recommender(tmp_path / "pretrained" / "causal")


def test_attention_weights_shape_and_causality() -> None:
    model = _model("causal")
    weights = attention_weights(model, np.array([3, 4, 5, 6, 7]))
    assert weights.shape == (2, 2, 5, 5)
    assert np.allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    assert np.allclose(np.triu(weights[-1, 0], k=1), 0.0)


def test_seen_items_respect_each_objective() -> None:
    causal = SeqRecModel(build_config(N_ITEMS, "causal", hidden=16, layers=1, max_len=12, seen_bias=True))
    masked = SeqRecModel(build_config(N_ITEMS, "masked", hidden=16, layers=1, max_len=12, seen_bias=True))
    inputs = torch.tensor([[0, 0, 3, 4, N_ITEMS + 1, 6]])
    rows, positions = torch.tensor([0, 0]), torch.tensor([3, 5])

    def per_row(seen: tuple[torch.Tensor, torch.Tensor], n_rows: int = 2) -> list[list[int]]:
        return [seen[1][seen[0] == row].tolist() for row in range(n_rows)]

    # the causal row sees up to its position, never PAD or MASK; the masked row sees all of it
    assert per_row(causal.seen_items(inputs, rows, positions)) == [[3, 4], [3, 4, 6]]
    assert per_row(masked.seen_items(inputs, rows, positions)) == [[3, 4, 6], [3, 4, 6]]
    repeated = torch.tensor([[3, 4, 3, 3]])  # an item consumed again counts once
    assert per_row(causal.seen_items(repeated, torch.tensor([0]), torch.tensor([3])), 1) == [[3, 4]]


def test_seen_bias_moves_only_items_in_the_input(tmp_path: Path) -> None:
    model = SeqRecModel(
        build_config(N_ITEMS, "causal", hidden=16, layers=1, max_len=12, seen_bias=True)
    ).eval()
    history = [np.array([3, 4, 5])]
    with torch.no_grad():
        before = catalogue_scores(model, history)
        model.seen_weight.fill_(-7.0)
        after = catalogue_scores(model, history)
    difference = (after - before)[0]
    assert torch.allclose(difference[[3, 4, 5]], torch.full((3,), -7.0))
    assert torch.count_nonzero(difference) == 3
    data = prepare_dataset(
        "synthetic",
        tmp_path / "a",
        min_interactions=3,
        synthetic=SyntheticConfig(n_users=20, n_items=N_ITEMS),
    )
    restored, _, _ = load_recommender(save_recommender(model, tmp_path / "m", data, {}))
    assert restored.learned_seen_bias() == -7.0


def test_damaged_model_folder_names_the_folder_and_the_notebook(tmp_path: Path) -> None:
    model = _model("causal")
    folder = tmp_path / "artifacts" / "multitask" / "model"
    data = prepare_dataset(
        "synthetic",
        tmp_path / "a",
        min_interactions=3,
        synthetic=SyntheticConfig(n_users=20, n_items=N_ITEMS),
    )
    save_recommender(model, folder, data, {})
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ArtifactError) as caught:
        load_recommender(folder)
    message = str(caught.value)
    assert str(folder) in message and "the saved model cannot be loaded" in message
    assert "Delete it and re-run notebooks/03_multitask_finetuning.ipynb" in message
