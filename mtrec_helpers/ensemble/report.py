"""The final comparison: one record per model for metrics.json, the table, and paired tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mtrec_helpers.core.comparison import paired
from mtrec_helpers.core.evaluation import RankingResult, bootstrap_ci
from mtrec_helpers.ensemble.beyond_accuracy import coverage_interval, intra_list_diversity

FINAL_METRICS = ("ndcg@10", "hr@10", "mrr", "coverage@10", "diversity@10")


def model_record(ranking: RankingResult, genres: np.ndarray, n_boot: int, seed: int = 0) -> dict[str, Any]:
    """Accuracy (NDCG/HR@10, @20, MRR), coverage@10 and diversity@10, each with a 95% interval."""
    record = ranking.summary(n_boot=n_boot, seed=seed)
    record["coverage@10_ci"] = list(coverage_interval(ranking.top, ranking.n_items, 10, n_boot, seed))
    diversity = intra_list_diversity(ranking.top, genres, 10)
    record["diversity@10"] = float(diversity.mean())
    record["diversity@10_ci"] = list(bootstrap_ci(diversity, n_boot=n_boot, seed=seed))
    return record


def final_frame(
    results: Mapping[str, Mapping[str, Any]], metrics: Sequence[str] = FINAL_METRICS
) -> pd.DataFrame:
    """Numbers for the CSV: each metric with its interval's low and high, best NDCG@10 first."""
    rows = {
        name: {
            column: value
            for metric in metrics
            for column, value in (
                (metric, record[metric]),
                (f"{metric}_low", record[f"{metric}_ci"][0]),
                (f"{metric}_high", record[f"{metric}_ci"][1]),
            )
        }
        for name, record in results.items()
    }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    return frame.sort_values("ndcg@10", ascending=False)


def best_single(results: Mapping[str, Mapping[str, Any]], members: Sequence[str]) -> str:
    """The member with the highest *test* NDCG@10: the strongest single opponent for the ensembles
    (choosing it on test favours the single model, never the ensemble)."""
    return max(members, key=lambda name: results[name]["ndcg@10"])


def paired_against(
    rankings: Mapping[str, RankingResult],
    challengers: Sequence[str],
    reference: str,
    n_boot: int,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Paired bootstrap over users of each challenger − ``reference`` on NDCG@10 (and HR@10)."""
    return {
        name: {
            **paired(rankings, name, reference, "ndcg@10", n_boot, seed),
            **{
                k: v
                for k, v in paired(rankings, name, reference, "hr@10", n_boot, seed).items()
                if k.startswith("hr@10")
            },
        }
        for name in challengers
    }
