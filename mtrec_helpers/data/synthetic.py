"""A seeded synthetic dataset in the MovieLens schema, with known latent preferences.

Items carry genres; each genre has a direction in a latent space and an item's vector is the mean
of its genres' directions plus noise. Each user starts from a mix of a few favourite genres and
drifts towards another genre over the session, so the next item depends on recent history. Users
pick among unseen items by a softmax over ``preference · item`` plus an item popularity bias, and
rate with noise around how much they like the item. Profiles (age, gender, occupation) depend on
the user's latent taste, so they are predictable from behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtrec_helpers.data.schema import AGE_BUCKETS, RawData, age_bucket

START_TIMESTAMP = 946_684_800  # 2000-01-01 UTC
OCCUPATIONS = ["student", "engineer", "artist", "educator", "other"]


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes and strengths of the generator."""

    n_users: int = 400
    n_items: int = 300
    n_genres: int = 8
    dim: int = 16
    min_length: int = 20
    max_length: int = 60
    taste_strength: float = 6.0
    popularity_strength: float = 1.0
    drift: float = 1.0
    item_noise: float = 0.3
    seed: int = 0


@dataclass
class SyntheticTruth:
    """The latent factors the data was drawn from (for checks and teaching)."""

    item_vectors: np.ndarray  # (n_items, dim), row i is item_id i + 1
    item_bias: np.ndarray  # (n_items,)
    user_start: np.ndarray  # (n_users, dim)
    user_end: np.ndarray  # (n_users, dim)
    genre_vectors: np.ndarray  # (n_genres, dim)

    def preference(self, user: int, progress: float) -> np.ndarray:
        """The user's taste at ``progress`` ∈ [0, 1] through their sequence."""
        return (1.0 - progress) * self.user_start[user] + progress * self.user_end[user]


def _unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def generate(config: SyntheticConfig = SyntheticConfig()) -> tuple[RawData, SyntheticTruth]:
    """Draw a dataset and the truth behind it; the same config always gives the same data."""
    rng = np.random.default_rng(config.seed)
    genre_vectors = _unit(rng.normal(size=(config.n_genres, config.dim)))
    item_genres = [
        rng.choice(config.n_genres, size=rng.integers(1, 4), replace=False) for _ in range(config.n_items)
    ]
    item_vectors = _unit(
        np.stack([genre_vectors[g].mean(axis=0) for g in item_genres])
        + config.item_noise * rng.normal(size=(config.n_items, config.dim))
    )
    item_bias = config.popularity_strength * rng.normal(size=config.n_items)
    favourite = rng.integers(config.n_genres, size=config.n_users)
    second = rng.integers(config.n_genres, size=config.n_users)
    target = rng.integers(config.n_genres, size=config.n_users)
    user_start = _unit(
        genre_vectors[favourite]
        + 0.5 * genre_vectors[second]
        + 0.3 * rng.normal(size=(config.n_users, config.dim))
    )
    user_end = _unit(user_start + config.drift * genre_vectors[target])
    truth = SyntheticTruth(item_vectors, item_bias, user_start, user_end, genre_vectors)
    interactions = _sessions(config, truth, rng)
    items = pd.DataFrame(
        {
            "item_id": np.arange(1, config.n_items + 1, dtype=np.int64),
            "title": [f"Synthetic item {i}" for i in range(1, config.n_items + 1)],
            "year": pd.array(rng.integers(1950, 2020, size=config.n_items), dtype="Int64"),
            "genres": [[f"genre-{g}" for g in sorted(genres)] for genres in item_genres],
            "tags": [[] for _ in range(config.n_items)],
            "genome": [[] for _ in range(config.n_items)],
        }
    )
    users = _profiles(config, favourite, rng)
    raw = RawData(
        name="synthetic",
        interactions=interactions,
        items=items,
        users=users,
        genres=[f"genre-{g}" for g in range(config.n_genres)],
        rating_scale=(1.0, 5.0, 1.0),
        has_user_profile=True,
        repairs={"duplicate_rows_dropped": 0, "blank_lines_skipped": 0},
    )
    return raw, truth


def _sessions(config: SyntheticConfig, truth: SyntheticTruth, rng: np.random.Generator) -> pd.DataFrame:
    """Every user's time-ordered choices and ratings, all users one step at a time."""
    n_users, n_items = config.n_users, config.n_items
    lengths = rng.integers(config.min_length, config.max_length + 1, size=n_users)
    clock = START_TIMESTAMP + rng.integers(0, 365 * 86400, size=n_users)
    seen = np.zeros((n_users, n_items), dtype=bool)
    users = np.arange(n_users)
    columns: list[tuple[np.ndarray, ...]] = []
    for step in range(int(lengths.max())):
        active = users[step < lengths]
        progress = (step / np.maximum(lengths[active] - 1, 1))[:, None]
        taste = (1.0 - progress) * truth.user_start[active] + progress * truth.user_end[active]
        affinity = taste @ truth.item_vectors.T
        logits = config.taste_strength * affinity + truth.item_bias
        logits[seen[active]] = -np.inf
        items = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)  # a softmax draw
        seen[active, items] = True
        liked = affinity[np.arange(len(active)), items]
        ratings = np.clip(np.round(3.0 + 2.5 * liked + rng.normal(0, 0.6, size=len(active))), 1, 5)
        clock[active] += rng.exponential(3 * 3600, size=len(active)).astype(np.int64) + 1
        columns.append((active + 1, items + 1, ratings, clock[active].copy()))
    user_id, item_id, rating, timestamp = (np.concatenate(parts) for parts in zip(*columns, strict=True))
    frame = pd.DataFrame({"user_id": user_id, "item_id": item_id, "rating": rating, "timestamp": timestamp})
    return frame.astype(
        {"user_id": np.int64, "item_id": np.int64, "rating": np.float32, "timestamp": np.int64}
    )


def _profiles(config: SyntheticConfig, favourite: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Profiles that depend on the user's favourite genre."""
    n = config.n_users
    age_index = (favourite + rng.integers(0, 2, size=n)) % len(AGE_BUCKETS)
    ages = np.array([15, 21, 30, 40, 46, 52, 60])[age_index] + rng.integers(0, 3, size=n)
    gender = np.where((favourite % 2 == 0) ^ (rng.random(n) < 0.2), "F", "M")
    occupation = np.asarray(OCCUPATIONS, dtype=object)[
        (favourite + rng.integers(0, 2, size=n)) % len(OCCUPATIONS)
    ]
    return pd.DataFrame(
        {
            "user_id": np.arange(1, n + 1, dtype=np.int64),
            "age": pd.array(ages, dtype="Int64"),
            "age_bucket": age_bucket(pd.Series(ages, dtype="Int64")),
            "gender": pd.array(gender, dtype="string"),
            "occupation": pd.array(occupation, dtype="string"),
        }
    )
