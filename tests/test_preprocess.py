"""k-core, id maps, time order with its tie-break, leave-one-out split and labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtrec_helpers.data import DataError
from mtrec_helpers.data.preprocess import (
    add_time_context,
    encode,
    index_map,
    kcore_filter,
    order_and_split,
)


def _frame(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).assign(rating=4.0)


def test_kcore_is_iterated_to_a_fixed_point() -> None:
    # Users 1-3 rate items 10-12; user 4 rates 10, 11 and 13. Item 13 has one rating, so it goes;
    # then user 4 has only two ratings left and goes too.
    rows = [(u, i, 0) for u in (1, 2, 3) for i in (10, 11, 12)] + [(4, 10, 0), (4, 11, 0), (4, 13, 0)]
    kept = kcore_filter(_frame(rows), k=3)
    assert sorted(kept["user_id"].unique()) == [1, 2, 3]
    assert sorted(kept["item_id"].unique()) == [10, 11, 12]
    assert (kept.groupby("user_id").size() >= 3).all() and (kept.groupby("item_id").size() >= 3).all()


def test_kcore_rejects_k_below_three() -> None:
    with pytest.raises(DataError, match="MIN_INTERACTIONS=2 is too small"):
        kcore_filter(_frame([(1, 1, 0)]), k=2)


def test_kcore_empty_result_is_an_error() -> None:
    with pytest.raises(DataError, match="is empty"):
        kcore_filter(_frame([(1, 1, 0), (1, 2, 0), (1, 3, 0)]), k=3)


def test_index_map_is_contiguous_from_start() -> None:
    mapping = index_map(pd.Series([42, 7, 42, 99]), start=1)
    assert mapping.to_dict() == {7: 1, 42: 2, 99: 3}


def _ordered(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    frame = _frame(rows)
    return order_and_split(frame.assign(user_idx=frame["user_id"], item_idx=frame["item_id"]))


def test_order_is_by_time_with_ties_in_file_order() -> None:
    rows = [(1, 30, 5), (1, 10, 5), (1, 20, 1), (1, 40, 9), (1, 5, 5)]
    assert _ordered(rows)["item_id"].tolist() == [20, 30, 10, 5, 40]
    reordered = [rows[3], rows[1], rows[0], rows[2], rows[4]]  # ties now come as 10, 30, 5
    assert _ordered(reordered)["item_id"].tolist() == [20, 10, 30, 5, 40]


def test_leave_one_out_split() -> None:
    rows = [(u, i, 100 * u + i) for u in (1, 2) for i in range(1, 6 + u)]
    ordered = _ordered(rows)
    for _, user in ordered.groupby("user_idx"):
        assert user["split"].tolist() == ["train"] * (len(user) - 2) + ["valid", "test"]
        assert user["position"].tolist() == list(range(len(user)))
        assert user["timestamp"].is_monotonic_increasing


def test_time_context_in_utc() -> None:
    frame = add_time_context(pd.DataFrame({"timestamp": [0, 1_000_000_000]}))
    # 1970-01-01 00:00 was a Thursday; 2001-09-09 01:46:40 UTC was a Sunday.
    assert frame["hour"].tolist() == [0, 1]
    assert frame["weekday"].tolist() == [3, 6]


def test_encode_marks_missing_as_minus_one() -> None:
    codes = encode(pd.Series(["b", None, "a", "z"], dtype="string"), ["a", "b"])
    assert codes.tolist() == [1, -1, 0, -1]
    assert codes.dtype == np.int16
