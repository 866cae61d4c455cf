"""Checks on interactions as read, before anything is derived from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mtrec_helpers.core.errors import DataError
from mtrec_helpers.data.parsing import LINE_COLUMN, reject_first


def check_ratings(frame: pd.DataFrame, path: Path, scale: tuple[float, float, float], fix: str) -> None:
    """Every rating lies on the dataset's scale (low, high, step); name the first that does not."""
    low, high, step = scale
    ratings = frame["rating"].to_numpy(dtype=np.float64)
    steps = (ratings - low) / step
    bad = ~np.isfinite(ratings) | (ratings < low) | (ratings > high) | (steps != np.round(steps))
    reject_first(
        frame,
        bad,
        lambda row: (
            f"rating {row['rating']:g} is outside this dataset's scale "
            f"({low:g} to {high:g} in steps of {step:g})."
        ),
        path,
        fix,
    )


def check_ids(frame: pd.DataFrame, columns: list[str], path: Path, fix: str) -> None:
    """Ids and timestamps are non-negative integers; name the first line that breaks this."""
    for column in columns:
        reject_first(
            frame,
            frame[column].to_numpy() < 0,
            lambda row, column=column: f"column '{column}' must not be negative, found {row[column]}.",
            path,
            fix,
        )


def check_timestamps(
    frame: pd.DataFrame, path: Path, window: tuple[int, int], source: str, margin_days: int, fix: str
) -> None:
    """Every timestamp lies in the release's collection window (Unix seconds, widened by ``margin_days``
    on both sides; ``source`` says where the window comes from); name the first line that does not."""
    low, high = window[0] - margin_days * 86400, window[1] + margin_days * 86400
    stamps = frame["timestamp"].to_numpy()

    def day(seconds: int) -> str:
        return str(pd.Timestamp(seconds, unit="s").date()) if abs(seconds) < 2**33 else "far beyond 2200"

    def problem(row: dict) -> str:
        return (
            f"timestamp {row['timestamp']} ({day(int(row['timestamp']))}) is outside this release's "
            f"collection window {day(window[0])} to {day(window[1])} ({source}; ± {margin_days} days); "
            "a cut or edited value would move this rating in the user's history."
        )

    reject_first(frame, (stamps < low) | (stamps > high), problem, path, fix)


def check_known(
    frame: pd.DataFrame, column: str, known: pd.Series, path: Path, other: Path, fix: str
) -> None:
    """Every id in ``column`` appears in the other file (e.g. every rated item is in u.item)."""
    unknown = ~frame[column].isin(known).to_numpy()
    reject_first(
        frame,
        unknown,
        lambda row: (
            f"{column} {row[column]} does not appear in {other.name} ({int(unknown.sum())} row(s) like this)."
        ),
        path,
        fix,
    )


def check_unique(frame: pd.DataFrame, column: str, path: Path, fix: str) -> None:
    """Ids in an items or users file are unique."""
    reject_first(
        frame,
        frame[column].duplicated().to_numpy(),
        lambda row: f"{column} {row[column]} appears more than once.",
        path,
        fix,
    )


def drop_duplicate_events(frame: pd.DataFrame, path: Path, fix: str) -> tuple[pd.DataFrame, int]:
    """Drop repeated identical (user, item, timestamp, rating) rows and count them.

    The same (user, item, timestamp) with two different ratings is contradictory and is an error.
    """
    key = ["user_id", "item_id", "timestamp"]
    repeated = frame.duplicated(key, keep=False).to_numpy()
    if not repeated.any():
        return frame, 0
    clash = frame.loc[repeated].groupby(key, sort=False)["rating"].transform("nunique") > 1
    if clash.any():
        rows = frame.loc[repeated].loc[clash.to_numpy()]
        first = rows.iloc[0]
        same = rows[(rows[key] == first[key]).all(axis=1)]
        lines = ", ".join(str(v) for v in same[LINE_COLUMN].tolist())
        raise DataError(
            f"user {first['user_id']} rated item {first['item_id']} at timestamp "
            f"{first['timestamp']} more than once with different ratings (lines {lines}).",
            path=path,
            line=int(first[LINE_COLUMN]),
            fix=fix,
        )
    keep = ~frame.duplicated(key, keep="first").to_numpy()
    return frame.loc[keep], int((~keep).sum())
