"""The run summary reads stages back from their metrics.json files."""

from __future__ import annotations

from pathlib import Path

from mtrec_helpers.core.results import write_metrics
from mtrec_helpers.course.report import main, stage_results, stage_timings


def _record(name: str, ndcg: float) -> dict:
    metrics = {"ndcg@10": ndcg, "hr@10": 2 * ndcg, "ndcg@20": ndcg, "hr@20": 2 * ndcg, "mrr": ndcg}
    return {name: {**metrics, "ndcg@10_ci": [ndcg - 0.01, ndcg + 0.01], "coverage@10": 0.5}}


def test_timings_and_tables(tmp_path: Path, capsys) -> None:
    common = {"dataset": "ml-100k", "device": "cpu", "params": {}}
    write_metrics(tmp_path, "data_prep", wall_time_s=7.0, results={}, best=None, **common)
    results = {**_record("ease", 0.07), **_record("causal", 0.11)}
    write_metrics(tmp_path, "pretraining", wall_time_s=700.0, results=results, best="causal", **common)
    timings = stage_timings(tmp_path)
    assert timings["stage"].tolist() == ["data_prep", "pretraining"]
    assert timings["wall_time_s"].tolist() == [7.0, 700.0]
    tables = stage_results(tmp_path)
    assert list(tables) == ["pretraining"]
    assert tables["pretraining"].index.tolist() == ["causal", "ease"]  # best NDCG@10 first
    assert tables["pretraining"].loc["causal", "ndcg@10"] == "0.1100 [0.1000, 0.1200]"
    multitask = {
        "pretrained": {"ndcg@10": 0.11, "hr@10": 0.2},
        "mtl_fixed": {"ndcg@10": 0.12, "hr@10": 0.21, "rating_rmse": 0.9},
        "single_rating": {"rating_rmse": 0.95},  # no ranking metrics: left out of the table
    }
    write_metrics(tmp_path, "multitask", wall_time_s=500.0, results=multitask, best="mtl_fixed", **common)
    table = stage_results(tmp_path)["multitask"]
    assert table.index.tolist() == ["mtl_fixed", "pretrained"]
    assert table.columns.tolist() == ["ndcg@10", "hr@10"]  # only what every row has
    assert main(["--artifacts-dir", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert "pretraining (test split)" in output and "multitask (test split)" in output
