"""Synthetic releases with the shape of the real large MovieLens releases, written in their own
file formats, so that every stage — readers and preprocessing included — can be measured at scale
without a download.

=================  =======  =======  ===========  ===================================
preset             users    items    ratings      written as
=================  =======  =======  ===========  ===================================
``synthetic-1m``     6,040    3,706    1,000,209  ml-1m (``::``-separated, profiles)
``synthetic-20m``  138,493   26,744   20,000,263  ml-20m / ml-25m CSV (half stars)
=================  =======  =======  ===========  ===================================

The generator is vectorised over users. Every user rates at least 20 items and user activity is
long-tailed (log-normal, as in MovieLens); items have a long-tailed popularity (Zipf-like) and
MovieLens' 18 genres. A user's items are a Plackett–Luce draw without replacement from

    softmax( taste · ⟨u, v_i⟩ + popularity · log p_i )

done all at once with the Gumbel top-k trick, u the user's taste vector and v_i the item's genre
vector. The draws are then put in time order by how much each item leans towards the user's later
taste (a drift direction, plus noise), so the next item depends on the recent ones. Ratings grow
with ⟨u, v_i⟩; profiles (ml-1m format) depend on the user's favourite genre.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MOVIELENS_GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
MIN_RATINGS = 20  # every MovieLens user has rated at least 20 movies
CHUNK_LOGITS = 2**25  # users × items logits generated at once (128 MB in float32)


@dataclass(frozen=True)
class ScalePreset:
    """A synthetic release: its size, the release whose file format it is written in, its window."""

    name: str
    n_users: int
    n_items: int
    n_ratings: int
    written_as: str  # "ml-1m" or "csv" (the ml-20m / ml-25m format)
    window: tuple[str, str]
    activity_sigma: float = 1.1  # log-normal spread of ratings per user
    popularity_exponent: float = 1.0  # p_i ∝ 1 / (rank_i + 10)^exponent
    taste_strength: float = 4.0
    dim: int = 16

    @property
    def files(self) -> tuple[str, ...]:
        return (
            ("ratings.dat", "movies.dat", "users.dat")
            if self.written_as == "ml-1m"
            else ("ratings.csv", "movies.csv")
        )


SCALE_PRESETS = {
    preset.name: preset
    for preset in (
        ScalePreset("synthetic-1m", 6_040, 3_706, 1_000_209, "ml-1m", ("2000-04-25", "2003-02-28")),
        ScalePreset("synthetic-20m", 138_493, 26_744, 20_000_263, "csv", ("1995-01-09", "2015-03-31")),
    )
}


@dataclass
class ScaleData:
    """A generated release before it is written: ratings, items and (ml-1m format) users."""

    ratings: pd.DataFrame  # user_id, item_id, rating, timestamp
    items: pd.DataFrame  # item_id, title, genres ('|'-joined)
    users: pd.DataFrame | None  # user_id, gender, age_code, occupation_code, zip


def activity(preset: ScalePreset, rng: np.random.Generator) -> np.ndarray:
    """Ratings per user: at least 20, log-normal above that, each at most half the catalogue,
    summing to ``n_ratings`` exactly."""
    cap = preset.n_items // 2
    share = rng.lognormal(0.0, preset.activity_sigma, size=preset.n_users)
    counts = np.full(preset.n_users, MIN_RATINGS, dtype=np.int64)
    while (missing := preset.n_ratings - int(counts.sum())) > 0:  # a few rounds: capped users drop out
        open_ = counts < cap
        weights = np.where(open_, share, 0.0)
        extra = np.floor(weights / weights.sum() * missing).astype(np.int64)
        if extra.sum() == 0:  # the last few: one more for the most active open users
            extra[np.argsort(-weights)[:missing]] = 1
        counts = np.minimum(counts + extra, cap)
    return counts


def generate_scale(preset: ScalePreset, seed: int = 0) -> ScaleData:
    """Draw the release (the same preset and seed always give the same data)."""
    rng = np.random.default_rng(seed)
    n_genres = len(MOVIELENS_GENRES)
    genre_vectors = _unit(rng.normal(size=(n_genres, preset.dim)))
    n_item_genres = rng.integers(1, 4, size=preset.n_items)
    item_genres = np.argsort(rng.random((preset.n_items, n_genres)), axis=1)[:, :3]  # up to 3 distinct
    genre_mask = np.arange(3)[None, :] < n_item_genres[:, None]
    item_vectors = _unit(
        (genre_vectors[item_genres] * genre_mask[..., None]).sum(1) / n_item_genres[:, None]
        + 0.3 * rng.normal(size=(preset.n_items, preset.dim))
    ).astype(np.float32)
    log_popularity = -preset.popularity_exponent * np.log(rng.permutation(preset.n_items) + 10.0)
    favourite = rng.integers(n_genres, size=preset.n_users)
    taste = _unit(genre_vectors[favourite] + 0.5 * rng.normal(size=(preset.n_users, preset.dim)))
    drift = _unit(rng.normal(size=(preset.n_users, preset.dim)))
    counts = activity(preset, rng)
    chunk = max(1, CHUNK_LOGITS // preset.n_items)
    by_activity = np.argsort(counts, kind="stable")  # chunks of users with similar counts: little padding
    parts = [
        _draw(
            by_activity[start : start + chunk],
            taste,
            drift,
            counts,
            item_vectors,
            log_popularity,
            preset,
            rng,
        )
        for start in range(0, preset.n_users, chunk)
    ]
    user, item, affinity = (np.concatenate(column) for column in zip(*parts, strict=True))
    order = np.argsort(user, kind="stable")  # users in id order, each user's items still in time order
    user, item, affinity = user[order], item[order], affinity[order]
    ratings = pd.DataFrame(
        {
            "user_id": user + 1,
            "item_id": item + 1,
            "rating": _ratings(affinity, preset.written_as == "csv", rng),
            "timestamp": _timestamps(counts, preset, rng),
        }
    )
    genre_names = np.asarray(MOVIELENS_GENRES, dtype=object)
    years = rng.integers(1920, 2015, size=preset.n_items)
    items = pd.DataFrame(
        {
            "item_id": np.arange(1, preset.n_items + 1),
            "title": [f"Synthetic Movie {i} ({y})" for i, y in enumerate(years, start=1)],
            "genres": ["|".join(genre_names[g[m]]) for g, m in zip(item_genres, genre_mask, strict=True)],
        }
    )
    users = _profiles(favourite, rng) if preset.written_as == "ml-1m" else None
    return ScaleData(ratings, items, users)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def _draw(
    users: np.ndarray,
    taste: np.ndarray,
    drift: np.ndarray,
    counts: np.ndarray,
    item_vectors: np.ndarray,
    log_popularity: np.ndarray,
    preset: ScalePreset,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """These users' items in time order (Gumbel top-k, then the drift order), with each rating's
    affinity ⟨u, v_i⟩."""
    affinity = taste[users].astype(np.float32) @ item_vectors.T
    keys = preset.taste_strength * affinity + log_popularity.astype(np.float32)
    keys -= np.log(-np.log(rng.random(keys.shape, dtype=np.float32) + 1e-12) + 1e-12)  # + Gumbel noise
    count = counts[users]
    longest = int(count.max())
    chosen = np.argpartition(-keys, longest - 1, axis=1)[:, :longest]  # the top `longest` keys per user
    keys = np.take_along_axis(keys, chosen, axis=1)
    lean = np.take_along_axis(drift[users].astype(np.float32) @ item_vectors.T, chosen, axis=1)
    lean += 0.1 * rng.standard_normal(lean.shape, dtype=np.float32)  # towards the later taste, noisy
    lean[np.argsort(np.argsort(-keys, axis=1), axis=1) >= count[:, None]] = np.inf  # beyond the count
    chosen = np.take_along_axis(chosen, np.argsort(lean, axis=1), axis=1)
    kept = np.arange(longest)[None, :] < count[:, None]
    rows = np.repeat(users, count)
    items = chosen[kept]
    return rows, items, (taste[rows] * item_vectors[items]).sum(1)


def _ratings(affinity: np.ndarray, half_stars: bool, rng: np.random.Generator) -> np.ndarray:
    """1–5 stars growing with affinity (half stars from 0.5 in the CSV releases)."""
    raw = 3.6 + 2.0 * affinity + rng.normal(0.0, 1.0, size=len(affinity))
    if half_stars:
        return np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
    return np.clip(np.round(raw), 1, 5)


def _timestamps(counts: np.ndarray, preset: ScalePreset, rng: np.random.Generator) -> np.ndarray:
    """Each user's ratings in time order: a first day in the window, then exponential gaps (hours
    to weeks), squeezed to end inside the window."""
    start, end = (int(pd.Timestamp(day, tz="UTC").timestamp()) for day in preset.window)
    first = rng.integers(start, end - 86_400, size=len(counts))
    gaps = rng.exponential(6 * 3600, size=int(counts.sum())).astype(np.int64) + 1
    owner = np.repeat(np.arange(len(counts)), counts)
    elapsed = np.cumsum(gaps)
    last = np.cumsum(counts) - 1  # each user's last rating
    elapsed -= np.repeat(np.concatenate([[0], elapsed[last[:-1]]]), counts)  # restart at every user
    span = np.repeat(elapsed[last], counts)
    room = (end - first)[owner]
    return first[owner] + np.minimum(elapsed, elapsed * room // span)


def _profiles(favourite: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """ml-1m's users.dat columns, depending on the favourite genre (so they are predictable)."""
    n = len(favourite)
    age_codes = np.array([1, 18, 25, 35, 45, 50, 56])
    return pd.DataFrame(
        {
            "user_id": np.arange(1, n + 1),
            "gender": np.where((favourite % 2 == 0) ^ (rng.random(n) < 0.2), "F", "M"),
            "age_code": age_codes[(favourite + rng.integers(0, 2, size=n)) % len(age_codes)],
            "occupation_code": (favourite + rng.integers(0, 3, size=n)) % 21,
            "zip": rng.integers(10_000, 99_999, size=n).astype(str),
        }
    )


def write_release(data: ScaleData, folder: Path, written_as: str) -> None:
    """The files of the release format ``written_as`` into ``folder`` (ml-1m: Latin-1 ``::``
    tables; csv: ml-20m / ml-25m's ``ratings.csv`` and ``movies.csv``)."""
    if written_as == "ml-1m":
        np.savetxt(folder / "ratings.dat", data.ratings.to_numpy(np.int64), fmt="%d::%d::%d::%d")
        lines = (f"{i}::{t}::{g}\n" for i, t, g in data.items.itertuples(index=False))
        (folder / "movies.dat").write_bytes("".join(lines).encode("latin-1"))
        assert data.users is not None
        lines = (f"{u}::{g}::{a}::{o}::{z}\n" for u, g, a, o, z in data.users.itertuples(index=False))
        (folder / "users.dat").write_text("".join(lines))
        return
    ratings = data.ratings.rename(columns={"user_id": "userId", "item_id": "movieId"})
    ratings.to_csv(folder / "ratings.csv", index=False, float_format="%.1f")
    movies = data.items.rename(columns={"item_id": "movieId"})
    movies.to_csv(folder / "movies.csv", index=False)


def synthesize(name: str, folder: Path, seed: int = 0) -> None:
    """Generate preset ``name`` and write its files into ``folder``."""
    preset = SCALE_PRESETS[name]
    write_release(generate_scale(preset, seed), folder, preset.written_as)
