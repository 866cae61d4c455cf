"""The content-only baseline — what the text alone knows, with no training at all — and the simplest
content features (genres and decade) that the language model's vectors are compared with.

A user is the mean of the text vectors of their last ``window`` items (most recent interests), and
every item is ranked by the cosine between its text vector and that profile:

    u = normalise( Σ_{i in last window} t_i ),   score(u, j) = u · t_j   (t unit vectors)

It ranks a never-seen item exactly as well as a popular one, and knows nothing about popularity or
sequence — the two things the trained models add.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

CONTENT_WINDOW = 20


def user_profiles(
    vectors: torch.Tensor, histories: Sequence[np.ndarray], window: int = CONTENT_WINDOW
) -> torch.Tensor:
    """(B, D) unit profiles: the normalised sum of each history's last ``window`` text vectors
    (zero for an empty history)."""
    recent = [h[-window:] if window > 0 else h for h in histories]
    lengths = torch.tensor([len(h) for h in recent])
    rows = torch.repeat_interleave(torch.arange(len(recent)), lengths)
    items = torch.from_numpy(np.concatenate([*recent, np.zeros(0, np.int64)]).astype(np.int64))
    sums = torch.zeros(len(recent), vectors.shape[1]).index_add_(0, rows, vectors[items])
    return torch.nn.functional.normalize(sums, dim=-1)


def content_scorer(
    vectors: np.ndarray, window: int = CONTENT_WINDOW
) -> Callable[[np.ndarray, list[np.ndarray]], torch.Tensor]:
    """An evaluator score function (users, histories) → (B, V) cosines to the users' profiles."""
    table = torch.nn.functional.normalize(torch.as_tensor(vectors, dtype=torch.float32), dim=-1)

    def score(users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        return user_profiles(table, histories, window) @ table.T

    return score


def genre_decade_features(genres: np.ndarray, year_buckets: np.ndarray) -> np.ndarray:
    """(V, G + B) item features without a language model: the multi-hot genres (V, G) and a one-hot of
    the release decade bucket (V,) (bucket 0: unknown year)."""
    decades = np.zeros((len(year_buckets), int(year_buckets.max()) + 1), dtype=np.float32)
    decades[np.arange(len(year_buckets)), year_buckets] = 1.0
    return np.concatenate([genres.astype(np.float32), decades], axis=1)
