"""Beyond accuracy: how varied each list is, and how much of the catalogue the lists reach.

- Intra-list diversity@k (Ziegler et al. 2005): the mean over pairs of a user's top-k items of
  1 − cosine similarity of their genre vectors; 0 when every item has the same genres.
- Coverage@k: the share of the catalogue in at least one user's top k. It is a property of the set
  of users, so its interval resamples users (with replacement) and recomputes the union. A resample
  holds only ~63% distinct users, so its coverage is biased low; the resamples' spread is therefore
  re-centred on the observed coverage (the bias-corrected percentile interval): it says how much
  coverage varies between random sets of this many users.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch


def intra_list_diversity(top: np.ndarray, genres: np.ndarray, k: int = 10) -> np.ndarray:
    """Per-user mean pairwise genre dissimilarity of the top ``k``; ``genres`` is (items, G) over
    item indices (rows of items without genres count as dissimilar to everything)."""
    if k < 2:
        raise ValueError(f"k={k}: diversity needs at least two items per list")
    vectors = torch.as_tensor(genres, dtype=torch.float32)
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp(min=1e-12)
    lists = unit[torch.as_tensor(top[:, :k], dtype=torch.long)]  # (U, k, G)
    similarity = lists @ lists.transpose(1, 2)
    pairs = k * (k - 1)
    off_diagonal = similarity.sum((1, 2)) - similarity.diagonal(dim1=1, dim2=2).sum(1)
    return (1.0 - off_diagonal / pairs).numpy().astype(np.float64)


def coverage_interval(
    top: np.ndarray, n_items: int, k: int = 10, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Bootstrap interval of coverage@k, resampling users, re-centred on the observed coverage."""
    n_users = len(top)
    lists = top[:, :k].astype(np.int64)
    rows = np.repeat(np.arange(n_users), lists.shape[1])
    # users × items membership, sparse: U·k entries (dense it would be 15 GB at ML-20M's shape)
    membership = scipy.sparse.csr_matrix(
        (np.ones(rows.size), (rows, lists.ravel())), shape=(n_users, int(top.max()) + 1)
    ).T.tocsr()
    rng = np.random.default_rng(seed)
    covered = []
    for start in range(0, n_boot, 250):
        draws = rng.integers(0, n_users, size=(min(250, n_boot - start), n_users))
        counts = np.stack([np.bincount(d, minlength=n_users) for d in draws]).T.astype(np.float64)
        covered.append(((membership @ counts) > 0).sum(0) / n_items)
    observed = len(np.unique(top[:, :k])) / n_items
    values = np.concatenate(covered) + (observed - np.concatenate(covered).mean())
    tail = (1.0 - level) / 2.0
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))
