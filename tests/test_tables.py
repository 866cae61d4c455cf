"""Result tables for reading: intervals in one cell, headers in words, no NaN, the frame untouched."""

from __future__ import annotations

import math

import pandas as pd

from mtrec_helpers.core.formatting import fixed, number, with_interval
from mtrec_helpers.core.tables import header, readable, readable_html


def _results() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ndcg@10": [0.11009694, 0.0432],
            "ndcg@10_ci": [[0.0944, 0.1265], [0.0338, 0.0535]],
            "ndcg@10_diff": [0.0149, -0.0712],
            "ndcg@10_diff_ci": [[0.0030, 0.0268], [-0.0801, -0.0623]],
            "p_not_better": [0.0062, math.nan],
            "n_users": [943.0, 943.0],
            "wall_s": [498.31, 1234.5],
        },
        index=["ensemble_softmax", "pop"],
    )


def test_an_interval_shares_its_values_cell_and_differences_are_signed() -> None:
    table = readable(_results()).rename(index={"softmax fusion (ensemble_softmax)": "ensemble_softmax",
                                               "most popular (pop)": "pop"})  # fmt: skip
    assert list(table.columns) == ["NDCG@10", "NDCG@10 difference", "P(not better)", "users", "wall time (s)"]
    assert table.loc["ensemble_softmax", "NDCG@10"] == "0.1101 [0.0944, 0.1265]"
    assert table.loc["pop", "NDCG@10 difference"] == "-0.0712 [-0.0801, -0.0623]"
    assert table.loc["ensemble_softmax", "NDCG@10 difference"] == "+0.0149 [+0.0030, +0.0268]"
    assert table.loc["pop", "P(not better)"] == "–"  # NaN: a dash
    assert table.loc["pop", "users"] == "943" and table.loc["pop", "wall time (s)"] == "1,234.5"
    assert list(readable(_results()).index) == ["softmax fusion (ensemble_softmax)", "most popular (pop)"]
    tiny = readable(pd.DataFrame({"ndcg@10_change": [-0.00001, 0.0012]}))
    assert list(tiny["NDCG@10 change"]) == ["0.0000", "0.0012"]  # no negative zero
    # … but an interval's bound keeps its sign: "-0.0000" says the interval reaches below zero
    gain = readable(pd.DataFrame({"gain": [0.00012], "gain_ci": [[-0.00003, 0.0003]], "flat": [-0.00002]}))
    assert gain.loc[0, "gain"] == "0.0001 [-0.0000, 0.0003]" and gain.loc[0, "flat"] == "0.0000"


def test_the_results_files_format_numbers_the_same_way() -> None:
    row = {"d": -0.00004, "d_ci": [-0.00009, 0.0003], "n": 1234.56}
    assert with_interval(row, "d", signed=True) == "+0.0000 [-0.0001, +0.0003]"
    small = {"d": 0.0001, "d_ci": [-0.00003, 0.0003]}
    assert with_interval(small, "d", signed=True) == "+0.0001 [-0.0000, +0.0003]"
    assert number(row, "n", 1) == "1234.6" and number(row, "missing") == "–"
    assert fixed(1234.56, 1, thousands=True) == "1,234.6" and fixed(-0.00004, 4) == "0.0000"


def test_headers_read_as_words_and_the_frame_is_untouched() -> None:
    assert header("hr@10_ci") == "HR@10 interval" and header("like_auc") == "like AUC" and header(3) == 3
    frame = _results()
    html = readable_html(frame)
    assert "ndcg@10_ci" not in html and "NaN" not in html and "0.1101 [0.0944, 0.1265]" in html
    assert list(frame.columns)[1] == "ndcg@10_ci" and frame.loc["pop", "ndcg@10"] == 0.0432
    hierarchy = pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")]))
    assert readable_html(hierarchy) is None  # pandas draws a column hierarchy itself


def test_a_frame_with_one_measure_per_row_reads_row_by_row() -> None:
    """03's λ explorer shows a run's measures as rows: the row labels in words, each row its decimals."""
    run = {"ndcg@10": 0.10812, "ndcg@10_ci": [0.0929, 0.1235], "rating_rmse": 1.01894, "n_users": 943.0}
    reference = {"ndcg@10": 0.1101, "ndcg@10_ci": None, "rating_rmse": 1.0223, "n_users": 943.0}
    table = readable(pd.DataFrame({"λ run": run, "reference": reference}))
    assert list(table.index) == ["NDCG@10", "rating RMSE", "users"]
    assert list(table.columns) == ["λ run", "reference"]
    assert table.loc["NDCG@10", "λ run"] == "0.1081 [0.0929, 0.1235]"
    assert table.loc["users", "reference"] == "943"
    models = pd.DataFrame({"ndcg@10": [0.1, 0.2]}, index=["causal", "mtl_fixed"])  # models as rows stay rows;
    named = ["causal Transformer (causal)", "mtl_fixed"]  # the final table's models in words
    assert list(readable(models).index) == named
