"""Tables that describe a processed dataset, for notebook 01 and its metrics.json."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mtrec_helpers.core.protocol import SPLITS
from mtrec_helpers.data.store import ProcessedData


def counts_table(data: ProcessedData) -> pd.DataFrame:
    """Users, items and interactions before and after the k-core filter."""
    manifest = data.manifest
    raw = {k: v for k, v in manifest["raw"].items() if k in manifest["counts"]}
    return pd.DataFrame({"raw": raw, f"{manifest['params']['min_interactions']}-core": manifest["counts"]})


def stage_counts(data: ProcessedData) -> dict[str, int]:
    """The counts notebook 01 records in metrics.json (after filtering)."""
    splits = data.manifest["splits"]
    return {
        **data.manifest["counts"],
        **{f"n_{split}": int(splits[split]) for split in SPLITS},
    }


def label_summary(data: ProcessedData) -> pd.DataFrame:
    """The multi-task labels and the base rates a trivial predictor would reach."""
    interactions = data.interactions
    users = data.users
    genres_per_item = data.items["genres"].map(len)
    rows: list[dict[str, Any]] = [
        {"label": "next item", "kind": "class over items", "summary": f"{data.n_items} items"},
        {
            "label": "rating",
            "kind": "regression",
            "summary": f"mean {interactions['rating'].mean():.2f}, sd {interactions['rating'].std():.2f}",
        },
        {
            "label": "like (rating ≥ 4)",
            "kind": "binary",
            "summary": f"base rate {interactions['like'].mean():.3f}",
        },
        {
            "label": "genres of next item",
            "kind": "multi-label",
            "summary": f"{len(data.vocab['genres'])} genres, {genres_per_item.mean():.2f} per item",
        },
        {"label": "hour / weekday", "kind": "context", "summary": "24 hours, 7 weekdays (UTC)"},
    ]
    for field in ("age_bucket", "gender", "occupation"):
        known = users[field].dropna()
        share = known.value_counts(normalize=True)
        summary = (
            f"{len(share)} classes, majority {share.index[0]!r} {share.iloc[0]:.2f}"
            if len(share)
            else "not in dataset"
        )
        rows.append({"label": f"user {field}", "kind": "class", "summary": summary})
    return pd.DataFrame(rows)
