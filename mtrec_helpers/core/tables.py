"""Result tables as a reader sees them: an interval in one short cell, headers in words, no NaN.

The chapters build their tables from metric records, whose keys are the results contract's
(``ndcg@10``, ``ndcg@10_ci``, ``p_not_better``). :func:`readable` turns such a frame into one for
reading; :func:`use_readable_tables` makes it how every DataFrame a notebook shows is drawn (its
HTML, which JupyterLab and the book display; the frame itself is untouched).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from mtrec_helpers.core.formatting import fixed

CI = "_ci"
WORDS = {"ndcg": "NDCG", "hr": "HR", "mrr": "MRR", "rmse": "RMSE", "mae": "MAE", "auc": "AUC", "mde": "MDE",
         "diff": "difference", "pct": "%", "ci": "interval", "f1": "F1"}  # fmt: skip
"""How the words of a key read in a header (any other word keeps its spelling)."""
HEADERS = {"p_not_better": "P(not better)", "n_users": "users", "n_items": "items", "wall_s": "wall time (s)"}
"""Whole keys with a header of their own."""
MISSING = "–"
MODELS = {
    "ensemble_softmax": ("softmax fusion", "06"),
    "ensemble_rrf": ("reciprocal-rank fusion", "06"),
    "ensemble_uniform": ("uniform average of z-scores", "06"),
    "causal": ("causal Transformer", "02"),
    "bert4rec": ("BERT4Rec", "02"),
    "ease": ("EASE", "02"),
    "itemknn": ("item-kNN", "02"),
    "pop": ("most popular", "02"),
    "text_aware": ("text-aware Transformer", "02b"),
    "multitask": ("multi-task model", "03"),
    "multi_scenario": ("multi-scenario model", "03b"),
    "rl_reranker": ("RL re-ranker of 03's candidates", "04"),
    "student": ("distilled student", "05"),
}
"""The models of the final table (the results contract's keys) in words, with the chapter that trains
each: a table's row of one of them reads "causal Transformer (causal)"."""


def header(key: Any) -> Any:
    """A column key in words: ``ndcg@10_diff`` → "NDCG@10 difference"; a non-string key unchanged."""
    if not isinstance(key, str):
        return key
    if key in HEADERS:
        return HEADERS[key]
    words = [WORDS.get(word.split("@")[0], word.split("@")[0]) + word[len(word.split("@")[0]) :]
             for word in key.split("_")]  # fmt: skip
    return " ".join(words)


def _decimals(values: Sequence[float]) -> int:
    """Decimals that suit a column: none for whole numbers, 1 from 100 up, else 4."""
    finite = [abs(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite or all(float(v).is_integer() for v in finite) and max(finite) >= 1:
        return 0
    return 1 if min(finite) >= 100 else 4


def _number(value: Any, decimals: int, signed: bool = False, bound: bool = False) -> str:
    """A number with ``decimals`` (thousands separated), a dash for a missing one, anything else as text;
    a pair is an interval, whose bounds keep their sign (formatting.fixed)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) for v in value)
    ):
        return "[" + ", ".join(_number(v, decimals, signed, bound=True) for v in value) + "]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return fixed(value, decimals, signed, thousands=True, bound=bound)


def _interval(value: Any, bounds: Any, decimals: int, signed: bool) -> str:
    """ "0.1101 [0.0944, 0.1265]" — or the value alone where the interval is missing."""
    shown = _number(value, decimals, signed)
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        return shown
    low, high = (_number(b, decimals, signed, bound=True) for b in bounds)
    return f"{shown} [{low}, {high}]"


def _measures(labels: Sequence[Any]) -> int:
    """How many of ``labels`` are keys of measures (a word of WORDS or HEADERS in them: ``rating_rmse``)."""
    return sum(
        isinstance(label, str)
        and (label in HEADERS or any(word.split("@")[0] in WORDS for word in label.split("_")))
        for label in labels
    )


def _model_rows(index: pd.Index) -> pd.Index:
    """The row labels with each final-table model in words ("causal Transformer (causal)")."""
    if isinstance(index, pd.MultiIndex) or not any(isinstance(k, str) and k in MODELS for k in index):
        return index
    return pd.Index([f"{MODELS[k][0]} ({k})" if isinstance(k, str) and k in MODELS else k for k in index],
                    name=index.name)  # fmt: skip


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` for reading: each ``x`` with its ``x_ci`` in one cell, numbers with the
    decimals their column needs, differences signed, a dash where a value is missing, headers in words.
    A frame with one measure per row (its row labels are measures' keys, its columns are not) is read
    row by row: its row labels in words, each row's numbers with the decimals that row needs."""
    rows_are_measures = _measures(frame.index) > len(frame.index) / 2 and not _measures(frame.columns)
    if len(frame.index) > 1 and rows_are_measures:
        return readable(frame.T).T
    out = pd.DataFrame(index=_model_rows(frame.index))
    for key in frame.columns:
        if isinstance(key, str) and key.endswith(CI) and key[: -len(CI)] in frame.columns:
            continue  # shown with its value
        column = frame[key]
        decimals = _decimals(column.tolist())
        signed = isinstance(key, str) and "diff" in key
        if isinstance(key, str) and f"{key}{CI}" in frame.columns:
            cells = [
                _interval(v, b, decimals, signed) for v, b in zip(column, frame[f"{key}{CI}"], strict=True)
            ]
        else:
            cells = [_number(v, decimals, signed) for v in column]
        out[header(key)] = cells
    return out


def readable_html(frame: pd.DataFrame) -> str | None:
    """The readable frame as HTML (None for a frame with a column hierarchy: pandas draws it)."""
    if isinstance(frame.columns, pd.MultiIndex):
        return None
    return readable(frame).to_html(classes="mtrec-table", border=0)


def use_readable_tables() -> None:
    """Draw every DataFrame this notebook shows with :func:`readable` (a no-op outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, readable_html)
