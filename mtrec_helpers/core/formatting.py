"""Numbers as the results tables print them: a value, or a value with its 95% interval in one cell."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TABLE_METRICS = ("ndcg@10", "hr@10", "mrr", "coverage@10", "diversity@10")
"""The ranking metrics a results table reports for every model."""


def table(results: dict[str, dict[str, Any]], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The chosen metrics (and their intervals) of every model."""
    return {
        name: {key: record[key] for m in metrics for key in (m, f"{m}_ci") if key in record}
        for name, record in results.items()
    }


def number(row: dict[str, Any], key: str, digits: int = 4) -> str:
    """``row[key]`` with ``digits`` decimals, or a dash where it is absent."""
    value = row.get(key)
    return "–" if value is None else f"{value:.{digits}f}"


def with_interval(row: dict[str, Any], key: str, signed: bool = False, digits: int = 4) -> str:
    """``row[key]`` and its interval ``row[key + "_ci"]`` as "0.1101 [0.0944, 0.1265]" (a dash if absent)."""
    if row.get(key) is None:
        return "–"
    sign = "+" if signed else ""
    low, high = row[f"{key}_ci"]
    return f"{row[key]:{sign}.{digits}f} [{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"
