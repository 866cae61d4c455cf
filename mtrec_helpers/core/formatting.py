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


def fixed(
    value: float, decimals: int, signed: bool = False, thousands: bool = False, bound: bool = False
) -> str:
    """``value`` with ``decimals`` decimals (a sign if ``signed``, commas between thousands if
    ``thousands``). A value that rounds to zero is written as zero, never "-0.0000" — except an
    interval's ``bound``, whose "-0.0000" says that the interval reaches below zero."""
    if abs(value) < 0.5 * 10.0**-decimals and not bound:
        value = 0.0
    return f"{value:{'+' if signed else ''}{',' if thousands else ''}.{decimals}f}"


def number(row: dict[str, Any], key: str, digits: int = 4) -> str:
    """``row[key]`` with ``digits`` decimals, or a dash where it is absent."""
    value = row.get(key)
    return "–" if value is None else fixed(value, digits)


def with_interval(row: dict[str, Any], key: str, signed: bool = False, digits: int = 4) -> str:
    """``row[key]`` and its interval ``row[key + "_ci"]`` as "0.1101 [0.0944, 0.1265]" (a dash if absent)."""
    if row.get(key) is None:
        return "–"
    low, high = (fixed(v, digits, signed, bound=True) for v in row[f"{key}_ci"])
    return f"{fixed(row[key], digits, signed)} [{low}, {high}]"
