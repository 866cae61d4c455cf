"""Full-ranking evaluation: every model is scored over the whole catalogue, no sampled negatives.

For each user the held-out item's rank is the number of catalogue items scored higher than it,
plus the number of *other* items scored equal (pessimistic ties, so a constant scorer ranks the
target last, never first). Items already in the user's history are excluded by default
(switchable); PAD and MASK never compete. Per-user metric arrays are kept, so bootstrap confidence
intervals and paired comparisons are one call each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import torch

from mtrec_helpers.core.memory import reusing_heap
from mtrec_helpers.core.protocol import SPLITS, RankedData

ScoreFn = Callable[[np.ndarray, list[np.ndarray]], torch.Tensor]
"""(user indices, their input sequences) → scores over item indices 0..n_items+1, shape (B, V)."""
DEFAULT_KS = (10, 20)


def split_histories(data: RankedData, split: str) -> list[np.ndarray]:
    """Every user's input for a held-out ``split`` item: the sequence through the split before it."""
    if split not in SPLITS[1:]:
        raise ValueError(f"split={split!r}; use 'valid' or 'test'")
    return data.sequences(SPLITS[SPLITS.index(split) - 1])


VALID_USERS = 10_000
"""Default size of the validation sample (``VALID_USERS``): validation only selects (epochs,
hyper-parameters, thresholds, a calibration scale), and on 10,000 users NDCG@10's standard error is
about 0.003; every user of ML-100k and ML-1M is in it, ML-20M's 138,493 are sampled. Test is never
sampled."""


def validation_users(n_users: int, limit: int = VALID_USERS, seed: int = 0) -> np.ndarray:
    """The users validation ranks: all of them when ``limit`` is 0 or not below ``n_users``,
    otherwise a seeded sample of ``limit`` (in user order), the same for every model and stage."""
    if limit <= 0 or n_users <= limit:
        return np.arange(n_users)
    return np.sort(np.random.default_rng(seed).choice(n_users, size=limit, replace=False))


def history_cells(histories: Sequence[np.ndarray], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, item) index pairs of every item in each history: where a (B, V) matrix marks them."""
    lengths = torch.tensor([len(h) for h in histories], dtype=torch.int64)
    rows = torch.repeat_interleave(torch.arange(len(histories)), lengths)
    cols = torch.from_numpy(np.concatenate([*histories, np.zeros(0, np.int64)]).astype(np.int64))
    return rows.to(device), cols.to(device)


def history_mask(histories: Sequence[np.ndarray], n_columns: int, device: torch.device) -> torch.Tensor:
    """Boolean (B, n_columns) mask of the items in each history."""
    mask = torch.zeros((len(histories), n_columns), dtype=torch.bool, device=device)
    mask[history_cells(histories, device)] = True
    return mask


class NonFiniteScores(ValueError):
    """A model scored some item NaN or +inf: its ranking would be meaningless (NaN never compares)."""


def check_finite(scores: torch.Tensor) -> None:
    """Refuse NaN or +inf scores of real items at once (−inf is allowed: "never recommend this item";
    PAD and MASK, the first and last columns, never compete). A NaN target would otherwise be outranked
    by nothing and count as a hit, so a diverged model would win validation."""
    if bool(scores[:, 1:-1].amax() < torch.inf):  # one pass, nothing allocated: NaN and +inf fail it
        return
    bad = torch.isnan(scores) | torch.isposinf(scores)
    bad[:, [0, -1]] = False
    if bad.any():
        row, item = (int(v) for v in bad.nonzero()[0])
        raise NonFiniteScores(
            f"{int(bad.any(dim=1).sum())} of {len(scores)} users got NaN or +inf scores (first: row {row}, "
            f"column {item}): the model diverged (e.g. too high an LR) or was given non-finite inputs."
        )


def rank_targets(
    scores: torch.Tensor, targets: torch.Tensor, histories: Sequence[np.ndarray] | None, top_k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """0-based pessimistic rank of each target among real items (those in ``histories`` excluded),
    and each row's top-k items. One copy of the scores and two passes over it (count, top-k)."""
    scores = scores.to(torch.float32, copy=True)
    check_finite(scores)
    scores[:, 0] = -torch.inf  # PAD
    scores[:, -1] = -torch.inf  # MASK
    rows = torch.arange(len(targets), device=scores.device)
    target_scores = scores[rows, targets].clone()
    if histories is not None:
        scores[history_cells(histories, scores.device)] = -torch.inf
        scores[rows, targets] = target_scores  # a target seen before still competes
    # items scored higher, plus the other items tied with the target (its own column is the -1);
    # an int32 count is 5x faster than torch's default int64 sum of booleans on CPU
    rank = (scores >= target_scores[:, None]).sum(dim=1, dtype=torch.int32).long() - 1
    top = torch.topk(scores, k=min(top_k, scores.shape[1]), dim=1).indices
    return rank, top


@dataclass
class RankingResult:
    """Per-user ranks of the held-out items and each user's top items."""

    ranks: np.ndarray
    top: np.ndarray
    n_items: int
    split: str
    exclude_history: bool

    def hit_rate(self, k: int) -> np.ndarray:
        """Per-user HR@k (1 if the target is in the top k)."""
        return (self.ranks < k).astype(np.float64)

    def ndcg(self, k: int) -> np.ndarray:
        """Per-user NDCG@k with one relevant item: 1 / log2(rank + 2) inside the top k."""
        return np.where(self.ranks < k, 1.0 / np.log2(self.ranks + 2.0), 0.0)

    def reciprocal_rank(self) -> np.ndarray:
        """Per-user reciprocal rank over the full ranking (MRR's terms)."""
        return 1.0 / (self.ranks + 1.0)

    def coverage(self, k: int) -> float:
        """Share of the catalogue that appears in at least one user's top k."""
        return len(np.unique(self.top[:, :k])) / self.n_items

    def per_user(self, metric: str) -> np.ndarray:
        """A per-user metric array by name: 'hr@10', 'ndcg@20', 'mrr'."""
        if metric == "mrr":
            return self.reciprocal_rank()
        name, _, k = metric.partition("@")
        if name == "hr":
            return self.hit_rate(int(k))
        if name == "ndcg":
            return self.ndcg(int(k))
        raise ValueError(f"unknown metric {metric!r}; use hr@K, ndcg@K or mrr")

    def select(self, rows: np.ndarray) -> RankingResult:
        """The same ranking restricted to ``rows`` (e.g. the users of one slice)."""
        return RankingResult(self.ranks[rows], self.top[rows], self.n_items, self.split, self.exclude_history)

    @classmethod
    def joined(cls, parts: Sequence[RankingResult]) -> RankingResult:
        """Rankings of disjoint user groups (e.g. each fold's cold users) as one, in ``parts``' order."""
        first = parts[0]
        return cls(np.concatenate([p.ranks for p in parts]), np.concatenate([p.top for p in parts]),
                   first.n_items, first.split, first.exclude_history)  # fmt: skip

    def summary(self, ks: Sequence[int] = DEFAULT_KS, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
        """Means with bootstrap 95% intervals over users, and coverage@k."""
        record: dict[str, Any] = {"split": self.split, "n_users": len(self.ranks)}
        for metric in [*(f"{m}@{k}" for k in ks for m in ("ndcg", "hr")), "mrr"]:
            values = self.per_user(metric)
            record[metric] = float(values.mean())
            record[f"{metric}_ci"] = list(bootstrap_ci(values, n_boot=n_boot, seed=seed))
        for k in ks:
            record[f"coverage@{k}"] = self.coverage(k)
        return record


class Ranker:
    """Accumulates a ranking batch by batch: :meth:`add` one batch of users' scores, :meth:`result`
    at the end. What :func:`evaluate` runs on; a caller that scores several models on the same
    batch (notebook 06's streaming fusion) keeps one per model and never holds more than a batch."""

    def __init__(
        self, data: RankedData, split: str, exclude_history: bool = True, ks: Sequence[int] = DEFAULT_KS
    ) -> None:
        self.n_items, self.split = data.n_items, split
        self.exclude_history, self.top_k = exclude_history, max(ks)
        self.targets = torch.from_numpy(data.targets(split).astype(np.int64))
        self.ranks: list[np.ndarray] = []
        self.tops: list[np.ndarray] = []

    def add(self, users: np.ndarray, histories: list[np.ndarray], scores: torch.Tensor) -> None:
        """Rank these users' held-out items under ``scores`` (B, V) (on the scores' device)."""
        targets = self.targets[users].to(scores.device)
        rank, top = rank_targets(scores, targets, histories if self.exclude_history else None, self.top_k)
        self.ranks.append(rank.cpu().numpy())
        self.tops.append(top.cpu().numpy())

    def result(self) -> RankingResult:
        """Every added user's rank and top items, in the order they were added."""
        ranks = np.concatenate(self.ranks) if self.ranks else np.zeros(0, np.int64)
        tops = np.concatenate(self.tops) if self.tops else np.zeros((0, self.top_k), np.int64)
        return RankingResult(ranks, tops, self.n_items, self.split, self.exclude_history)


def evaluate(
    score_fn: ScoreFn,
    data: RankedData,
    split: str = "test",
    exclude_history: bool = True,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    users: np.ndarray | None = None,
) -> RankingResult:
    """Rank every user's (or only ``users``') held-out ``split`` item over the full catalogue, in
    batches on ``device``."""
    ranker = Ranker(data, split, exclude_history, ks)
    rank_batches(score_fn, data, split, [ranker], batch_size, device, users)
    return ranker.result()


def rank_batches(
    score_fn: ScoreFn,
    data: RankedData,
    split: str,
    rankers: Sequence[Ranker],
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    users: np.ndarray | None = None,
) -> None:
    """Score each batch of users once and add it to every ranker (e.g. both history protocols)."""
    histories = split_histories(data, split)
    chosen = np.arange(data.n_users) if users is None else np.asarray(users)
    with torch.no_grad():
        for start in reusing_heap(range(0, len(chosen), batch_size)):
            batch_users = chosen[start : start + batch_size]
            batch = [histories[u] for u in batch_users]
            scores = score_fn(batch_users, batch).to(device)
            for ranker in rankers:
                ranker.add(batch_users, batch, scores)


def _bootstrap_means(values: np.ndarray, n_boot: int, seed: int, chunk: int = 200) -> np.ndarray:
    """Means of ``n_boot`` resamples of ``values`` with replacement (chunked to bound memory)."""
    rng = np.random.default_rng(seed)
    n = len(values)
    means = []
    for start in range(0, n_boot, chunk):
        draws = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        means.append(values[draws].mean(axis=1))
    return np.concatenate(means)


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-user ``values``."""
    means = _bootstrap_means(np.asarray(values, dtype=np.float64), n_boot, seed)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


@dataclass(frozen=True)
class PairedComparison:
    """Mean per-user difference a − b, its bootstrap interval, and the share of resamples ≤ 0."""

    diff: float
    ci: tuple[float, float]
    p_not_better: float

    @property
    def significant(self) -> bool:
        """The interval lies above zero: a is better than b."""
        return self.ci[0] > 0.0


def minimum_detectable_effect(differences: np.ndarray, power: float = 0.8, level: float = 0.95) -> float:
    """The smallest true mean difference a paired comparison of these per-user ``differences`` would
    detect with probability ``power`` at the two-sided ``level``: (z_{1−α/2} + z_power) · sd / √n.
    A tie whose interval is narrower than this says "no effect this large"; a wider one says "too few
    users to tell"."""
    differences = np.asarray(differences, dtype=np.float64)
    if len(differences) < 2:
        raise ValueError(f"a minimum detectable effect needs at least 2 users; got {len(differences)}")
    z = NormalDist().inv_cdf
    return float((z(1 - (1 - level) / 2) + z(power)) * differences.std(ddof=1) / np.sqrt(len(differences)))


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> PairedComparison:
    """Paired bootstrap over users of the difference between two models' per-user metrics."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same users: shapes {a.shape} and {b.shape}")
    means = _bootstrap_means(a - b, n_boot, seed)
    tail = (1.0 - level) / 2.0
    ci = (float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail)))
    return PairedComparison(float((a - b).mean()), ci, float((means <= 0).mean()))
