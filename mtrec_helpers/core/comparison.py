"""Evaluate several models on one split and compare them with honest statistics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from mtrec_helpers.core.evaluation import (
    DEFAULT_KS,
    Ranker,
    RankingResult,
    ScoreFn,
    paired_bootstrap,
    rank_batches,
)
from mtrec_helpers.core.protocol import RankedData

TABLE_METRICS = ("ndcg@10", "hr@10", "ndcg@20", "hr@20", "mrr", "coverage@10")


def evaluate_protocols(
    scorers: Mapping[str, ScoreFn],
    data: RankedData,
    split: str = "test",
    device: torch.device | str = "cpu",
    ks: Sequence[int] = DEFAULT_KS,
) -> tuple[dict[str, RankingResult], dict[str, RankingResult]]:
    """Every model ranked with the user's history excluded and, from the same scores, included (the
    protocol of e.g. RecBole's sequential models): one scoring pass per model for both."""
    excluded: dict[str, RankingResult] = {}
    included: dict[str, RankingResult] = {}
    for name, score in scorers.items():
        rankers = [Ranker(data, split, True, ks), Ranker(data, split, False, ks)]
        rank_batches(score, data, split, rankers, device=device)
        excluded[name], included[name] = rankers[0].result(), rankers[1].result()
    return excluded, included


def summaries(
    rankings: Mapping[str, RankingResult], n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Each model's metrics with bootstrap 95% intervals (the metrics.json ``results`` block)."""
    return {name: result.summary(n_boot=n_boot, seed=seed) for name, result in rankings.items()}


def results_table(
    results: Mapping[str, Mapping[str, Any]], metrics: Sequence[str] = TABLE_METRICS
) -> pd.DataFrame:
    """A readable table: 'value [low, high]' per metric (those every model has), best NDCG@10 first."""
    metrics = [m for m in metrics if all(m in record for record in results.values())]
    rows = {}
    for name, record in results.items():
        row = {}
        for metric in metrics:
            interval = record.get(f"{metric}_ci")
            row[metric] = (
                f"{record[metric]:.4f} [{interval[0]:.4f}, {interval[1]:.4f}]"
                if interval
                else f"{record[metric]:.4f}"
            )
        rows[name] = row
    order = sorted(results, key=lambda name: -results[name]["ndcg@10"])
    return pd.DataFrame.from_dict(rows, orient="index").loc[order]


def paired(
    rankings: Mapping[str, RankingResult],
    a: str,
    b: str,
    metric: str = "ndcg@10",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired bootstrap of ``a`` − ``b`` on a per-user metric, as a metrics.json record."""
    comparison = paired_bootstrap(
        rankings[a].per_user(metric), rankings[b].per_user(metric), n_boot=n_boot, seed=seed
    )
    return {
        "a": a,
        "b": b,
        "metric": metric,
        f"{metric}_diff": comparison.diff,
        f"{metric}_diff_ci": list(comparison.ci),
        "p_not_better": comparison.p_not_better,
        "significant": comparison.significant,
    }


def paired_table(*records: Mapping[str, Any]) -> pd.DataFrame:
    """Paired comparisons (records of :func:`paired`) as a readable table: one row per "a − b", the
    difference, its 95% interval, P(a is not better) and whether the interval excludes zero."""
    rows = {}
    for record in records:
        metric = record["metric"]
        low, high = record[f"{metric}_diff_ci"]
        rows[f"{record['a']} − {record['b']}"] = {
            f"{metric} difference": round(record[f"{metric}_diff"], 4),
            "95% interval": f"[{low:+.4f}, {high:+.4f}]",
            "P(not better)": round(record["p_not_better"], 4),
            "interval above zero": bool(record["significant"]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")
