"""Baselines checked against their definitions, and against each other on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtrec_helpers.core.evaluation import evaluate, history_mask
from mtrec_helpers.data import SyntheticConfig, prepare_dataset
from mtrec_helpers.pretraining.baselines import (
    cooccurrence,
    fit_ease,
    fit_itemknn,
    fit_popularity,
    head_items,
    tune,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    config = SyntheticConfig(n_users=200, n_items=80, min_length=10, max_length=25)
    return prepare_dataset(
        "synthetic", tmp_path_factory.mktemp("baselines"), min_interactions=3, synthetic=config
    )


def test_popularity_counts_training_interactions(data) -> None:
    model = fit_popularity(data)
    train = data.interactions[data.interactions["split"] == "train"]
    item = int(train["item_idx"].iloc[0])
    assert model.counts[0, item] == (train["item_idx"] == item).sum()
    assert model.score(np.arange(3), [np.array([1])] * 3).shape == (3, data.n_items + 2)


def test_ease_matches_its_constrained_least_squares_definition(data) -> None:
    l2 = 50.0
    weights = fit_ease(data, l2).weights.double()
    gram = cooccurrence(data)
    assert torch.all(torch.diag(weights) == 0)
    # Column j solves min ||x_j − X b||² + λ||b||² with b_j = 0: (G + λI)_{−j,−j} b = G_{−j,j}.
    for j in (1, 17, data.n_items):
        keep = [i for i in range(gram.shape[0]) if i != j]
        system = gram[keep][:, keep] + l2 * torch.eye(len(keep), dtype=torch.float64)
        solution = torch.linalg.solve(system, gram[keep, j])
        assert torch.allclose(weights[keep, j], solution, atol=1e-5)


def test_itemknn_is_pruned_cosine(data) -> None:
    gram = cooccurrence(data)
    model = fit_itemknn(data, neighbours=5, gram=gram)
    norms = torch.sqrt(torch.diag(gram)).clamp_min(1e-12)
    cosine = (gram / norms[:, None] / norms[None, :]).float()
    column = 7
    kept = torch.nonzero(model.weights[:, column]).flatten()
    assert len(kept) == 5 and column not in kept.tolist()
    assert torch.allclose(model.weights[kept, column], cosine[kept, column])
    others = cosine[:, column].clone()
    others[column] = -1
    assert others[kept].min() >= torch.topk(others, 6).values[-1]


def test_tuning_picks_the_best_validation_value_and_ease_beats_popularity(data) -> None:
    tuned = tune(fit_ease, [1.0, 30.0, 1000.0], data)
    assert tuned.value == max(tuned.search, key=tuned.search.get)
    popularity = evaluate(fit_popularity(data).score, data, "valid").ndcg(10).mean()
    assert tuned.search[tuned.value] > popularity


def test_empty_tuning_grid_is_a_clear_error_not_an_assert(data) -> None:
    with pytest.raises(ValueError, match="tuning grid is empty.*KNN_NEIGHBOURS, EASE_L2"):
        tune(fit_ease, [], data)


def test_sparse_cooccurrence_equals_the_dense_product(data) -> None:
    x = history_mask(data.sequences("train"), data.n_items + 2, torch.device("cpu")).double()
    assert torch.equal(cooccurrence(data), x.T @ x)
    head = head_items(data, 30)
    assert torch.equal(cooccurrence(data, head), (x.T @ x)[head][:, head])


def test_item_item_models_on_the_catalogue_head_beyond_max_items(data) -> None:
    assert head_items(data, data.n_items) is None  # small enough: exact
    head = head_items(data, 30)
    counts = fit_popularity(data).counts[0]
    assert (
        len(head) == 30
        and counts[head].min() >= counts[[i for i in range(counts.shape[0]) if i not in head]].max()
    )
    ease = fit_ease(data, 50.0, max_items=30)
    assert ease.weights.shape == (30, 30) and torch.equal(ease.items, head)
    exact_on_head = fit_ease(data, 50.0, gram=cooccurrence(data, head), max_items=data.n_items)
    assert torch.allclose(ease.weights, exact_on_head.weights)  # EASE with B_ij = 0 outside the head
    users = np.arange(5)
    histories = [data.sequences("valid")[u] for u in users]
    scores = ease.score(users, histories)
    tail = torch.ones(data.n_items + 2, dtype=torch.bool)
    tail[head] = False
    assert scores.shape == (5, data.n_items + 2) and scores[:, tail].abs().max() == 0
    multi_hot = history_mask(histories, data.n_items + 2, torch.device("cpu")).float()
    clicked = torch.tensor([int(head[3]), int(torch.nonzero(tail)[5]), int(head[0]), 1, 2])
    after = multi_hot.clone()
    after[torch.arange(5), clicked] = 1.0
    fresh = (multi_hot[torch.arange(5), clicked] == 0)[:, None]
    own = ease.own_scores(multi_hot)  # the head's columns only: what the simulator keeps per session
    assert own.shape == (5, len(head))
    assert torch.allclose(ease.own_scores(after), own + ease.own_rows(clicked) * fresh, atol=1e-5)
    every = torch.arange(data.n_items + 2).expand(5, -1)
    assert torch.equal(ease.read(own, every), ease.apply(multi_hot))  # read back over the catalogue
    knn = fit_itemknn(data, 5, max_items=30)
    assert knn.weights.shape == (30, 30) and knn.score(users, histories)[:, tail].abs().max() == 0
    with pytest.raises(ValueError, match="ITEM_ITEM_MAX=0"):
        head_items(data, 0)
