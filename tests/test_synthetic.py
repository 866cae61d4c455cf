"""The synthetic generator: seeded, in the common schema, and with a signal a model can learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mtrec_helpers.data import SyntheticConfig, generate, prepare_dataset
from mtrec_helpers.data.schema import INTERACTION_COLUMNS, USER_COLUMNS

CONFIG = SyntheticConfig(n_users=300, n_items=200, min_length=15, max_length=40)


def _hit_rate(scores: np.ndarray, histories: list[np.ndarray], targets: np.ndarray, k: int = 10) -> float:
    """Share of users whose held-out item ranks in the top k, history excluded (full ranking)."""
    hits = 0
    for row, history, target in zip(scores, histories, targets, strict=True):
        row = row.copy()
        row[history] = -np.inf
        hits += int((row > row[target]).sum() < k)
    return hits / len(targets)


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, _ = generate(CONFIG)
    b, _ = generate(CONFIG)
    c, _ = generate(SyntheticConfig(**{**CONFIG.__dict__, "seed": 1}))
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.users, b.users)
    assert not a.interactions.equals(c.interactions)


def test_schema_and_ranges() -> None:
    raw, truth = generate(CONFIG)
    assert list(raw.interactions.columns) == INTERACTION_COLUMNS
    assert list(raw.users.columns) == USER_COLUMNS
    assert raw.interactions["rating"].isin([1, 2, 3, 4, 5]).all()
    assert raw.interactions.groupby("user_id")["timestamp"].is_monotonic_increasing.all()
    assert not raw.interactions.duplicated(["user_id", "item_id"]).any()  # no repeats
    assert truth.item_vectors.shape == (CONFIG.n_items, CONFIG.dim)
    assert set(raw.items["genres"].map(len)) <= {1, 2, 3}


def test_known_preferences_beat_popularity_by_far(tmp_path: Path) -> None:
    """The generator's own taste model ranks held-out items far better than popularity does."""
    data = prepare_dataset("synthetic", tmp_path, min_interactions=3, synthetic=CONFIG)
    _, truth = generate(CONFIG)
    histories = [s for s in data.sequences("valid")]
    targets = data.targets("test")
    users = data.users["user_id"].to_numpy() - 1
    # Item index j (1-based, by original id) ↔ truth row item_id - 1.
    item_rows = data.items.sort_values("item_idx")["item_id"].to_numpy() - 1
    oracle = np.full((data.n_users, data.n_items + 2), -np.inf)
    for user in range(data.n_users):
        taste = truth.preference(int(users[user]), 1.0)
        logits = CONFIG.taste_strength * truth.item_vectors @ taste + truth.item_bias
        oracle[user, 1 : data.n_items + 1] = logits[item_rows]
    counts = np.bincount(
        data.interactions.loc[data.interactions["split"] == "train", "item_idx"], minlength=data.n_items + 2
    ).astype(float)
    counts[[0, data.n_items + 1]] = -np.inf
    popularity = np.tile(counts, (data.n_users, 1))
    oracle_hr = _hit_rate(oracle, histories, targets)
    popularity_hr = _hit_rate(popularity, histories, targets)
    print(f"HR@10 oracle {oracle_hr:.3f} popularity {popularity_hr:.3f}")
    assert oracle_hr > 2 * popularity_hr and oracle_hr - popularity_hr > 0.15


def test_preferences_drift_over_a_sequence() -> None:
    raw, truth = generate(CONFIG)
    early, late = [], []
    for user, group in raw.interactions.groupby("user_id"):
        items = group["item_id"].to_numpy() - 1
        gain = truth.item_vectors[items] @ (truth.user_end[user - 1] - truth.user_start[user - 1])
        half = len(items) // 2
        early.append(gain[:half].mean())
        late.append(gain[half:].mean())
    assert np.mean(late) - np.mean(early) > 0.05


def test_profiles_depend_on_taste() -> None:
    raw, truth = generate(CONFIG)
    favourite = np.argmax(truth.user_start @ truth.genre_vectors.T, axis=1)
    female = (raw.users["gender"] == "F").to_numpy()
    agreement = np.mean(female == (favourite % 2 == 0))
    print(f"agreement {agreement:.3f}")
    assert agreement > 0.65
