"""K-means in torch: k-means++ initialisation, batched Lloyd iterations, CPU or CUDA.

Distances are computed a chunk of points at a time (``chunk``), so memory stays at chunk × k
whatever the number of points. Several initialisations (``n_init``) keep the lowest inertia, as
scikit-learn does. :func:`silhouette` and :func:`sweep_k` give the numbers behind the elbow and
silhouette plots used to choose k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch


@dataclass
class KMeansResult:
    """Centroids (k, d), each point's cluster (n,), the inertia and Lloyd iterations run."""

    centroids: torch.Tensor
    labels: torch.Tensor
    inertia: float
    iterations: int


def squared_distances(points: torch.Tensor, centroids: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """(n, k) squared Euclidean distances, computed ``chunk`` points at a time."""
    parts = [torch.cdist(block, centroids).pow(2) for block in points.split(chunk)]
    return torch.cat(parts)


def kmeans_plus_plus(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) with scikit-learn's greedy variant: at
    each step 2 + ⌊ln k⌋ candidates are drawn ∝ D², and the one that lowers the inertia most is kept."""
    n = len(points)
    trials = 2 + int(math.log(k))
    first = int(torch.randint(n, (1,), generator=generator))
    centroids = [points[first]]
    closest = squared_distances(points, points[first : first + 1])[:, 0]
    for _ in range(1, k):
        weights = closest.double().cpu()
        if float(weights.sum()) <= 0:  # fewer distinct points than k: any point will do
            weights = torch.ones(n, dtype=torch.float64)
        candidates = torch.multinomial(weights, trials, replacement=True, generator=generator)
        distances = squared_distances(points, points[candidates.to(points.device)])  # (n, trials)
        potentials = torch.minimum(closest[:, None], distances).sum(0)
        best = int(potentials.argmin())
        centroids.append(points[int(candidates[best])])
        closest = torch.minimum(closest, distances[:, best])
    return torch.stack(centroids)


def lloyd(
    points: torch.Tensor, centroids: torch.Tensor, max_iter: int, tol: float
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Lloyd iterations until the centroids move less than ``tol`` (relative to the data's variance);
    an emptied cluster takes the point farthest from its centroid."""
    threshold = tol * float(points.var(0).mean())
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        distances = squared_distances(points, centroids)
        labels = distances.argmin(1)
        sums = torch.zeros_like(centroids).index_add_(0, labels, points)
        counts = torch.bincount(labels, minlength=len(centroids)).to(points.dtype)
        updated = sums / counts.clamp(min=1)[:, None]
        for empty in torch.nonzero(counts == 0).flatten().tolist():
            far = int(distances.gather(1, labels[:, None]).squeeze(1).argmax())
            updated[empty] = points[far]
        shift = float((updated - centroids).pow(2).sum(1).max())
        centroids = updated
        if shift <= threshold:
            break
    labels = squared_distances(points, centroids).argmin(1)
    return centroids, labels, iterations


def kmeans(
    points: torch.Tensor, k: int, n_init: int = 3, max_iter: int = 300, tol: float = 1e-4, seed: int = 0
) -> KMeansResult:
    """The best of ``n_init`` k-means++ runs (lowest inertia); runs on ``points.device``."""
    if not 1 <= k <= len(points):
        raise ValueError(f"k must be between 1 and the number of points ({len(points)}), got {k}")
    generator = torch.Generator().manual_seed(seed)
    best: KMeansResult | None = None
    for _ in range(n_init):
        start = kmeans_plus_plus(points, k, generator)
        centroids, labels, iterations = lloyd(points, start, max_iter, tol)
        inertia = float(squared_distances(points, centroids).gather(1, labels[:, None]).sum())
        if best is None or inertia < best.inertia:
            best = KMeansResult(centroids, labels, inertia, iterations)
    assert best is not None
    return best


def silhouette(
    points: torch.Tensor, labels: torch.Tensor, chunk: int = 4096, rows: torch.Tensor | None = None
) -> float:
    """Mean silhouette (b − a) / max(a, b) over ``rows`` (default every point), each point's against
    every point (0 for points alone in their cluster): a sample of rows costs rows × points distances
    instead of points², and each sampled point's silhouette is exact."""
    k = int(labels.max()) + 1
    counts = torch.bincount(labels, minlength=k).to(points.dtype)
    one_hot = torch.nn.functional.one_hot(labels, k).to(points.dtype)
    chosen = torch.arange(len(points)) if rows is None else rows
    scores = []
    for block_rows in chosen.split(chunk):
        block, block_labels = points[block_rows], labels[block_rows]
        sums = torch.cdist(block, points) @ one_hot  # (chunk, k) summed distances to each cluster
        own = counts[block_labels]
        a = sums.gather(1, block_labels[:, None]).squeeze(1) / (own - 1).clamp(min=1)
        means = sums / counts.clamp(min=1)
        means.scatter_(1, block_labels[:, None], torch.inf)
        means[:, counts == 0] = torch.inf
        b = means.min(1).values
        score = (b - a) / torch.maximum(a, b).clamp(min=1e-12)
        scores.append(torch.where(own > 1, score, 0.0))
    return float(torch.cat(scores).mean())


def sweep_k(
    points: torch.Tensor, ks: Sequence[int], n_init: int = 3, seed: int = 0, rows: torch.Tensor | None = None
) -> pd.DataFrame:
    """Inertia (elbow) and silhouette (over ``rows``, default every point) for every k in ``ks``."""
    records = []
    for k in ks:
        result = kmeans(points, k, n_init=n_init, seed=seed)
        score = silhouette(points, result.labels, rows=rows)
        records.append({"k": k, "inertia": result.inertia, "silhouette": score})
    return pd.DataFrame(records)
