"""The results contract: metrics.json written atomically, with the keys every reader relies on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mtrec_helpers.core.results import metrics_path, read_metrics, write_metrics
from mtrec_helpers.core.stages import ArtifactError


def _write(tmp_path: Path, **results) -> Path:
    return write_metrics(
        tmp_path,
        "pretraining",
        dataset="ml-100k",
        device="cpu",
        wall_time_s=1.23456,
        params={"EPOCHS": 2},
        results=results,
        best="causal",
        train_seq_per_s=np.float32(812.5),
    )


def test_round_trip_with_numpy_values(tmp_path: Path) -> None:
    path = _write(tmp_path, causal={"ndcg@10": np.float64(0.1), "ndcg@10_ci": np.array([0.09, 0.11])})
    assert path == tmp_path / "pretraining" / "metrics.json"
    record = read_metrics(tmp_path, "pretraining")
    assert record["results"]["causal"] == {"ndcg@10": 0.1, "ndcg@10_ci": [0.09, 0.11]}
    assert record["wall_time_s"] == 1.235 and record["train_seq_per_s"] == 812.5
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temporary file left


def test_non_finite_metric_is_refused_and_nothing_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="finite"):
        _write(tmp_path, causal={"ndcg@10": float("nan")})
    assert not metrics_path(tmp_path, "pretraining").exists()


def test_missing_contract_keys_are_reported(tmp_path: Path) -> None:
    path = metrics_path(tmp_path, "rl")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"stage": "rl"}))
    with pytest.raises(ValueError, match="lacks"):
        read_metrics(tmp_path, "rl")


def test_unknown_stage_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        metrics_path(tmp_path, "training")
    with pytest.raises(ArtifactError, match="run notebooks/03_multitask_finetuning.ipynb with this"):
        read_metrics(tmp_path, "multitask")
