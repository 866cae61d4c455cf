"""Early stopping's price (course/early_stopping.py): read from the engine's own checkpoints, and the
claim it rests on — a patience above a run's longest wait before its best keeps that best epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from configs import engine

from mtrec_helpers.core.engine import Objective, accelerator_for, fit
from mtrec_helpers.course.benchmark import summary
from mtrec_helpers.course.early_stopping import early_stopping, markdown, run_histories, stopping

SCORES = [0.10, 0.30, 0.20, 0.30, 0.25, 0.40, 0.35, 0.38, 0.33, 0.31, 0.30, 0.29]
"""A validation curve: a tie (epoch 4) is no new best; the longest wait before the best (epoch 6)
is three epochs (3–5)."""


class _Scripted(Objective):
    """Two batches an epoch of a one-weight model; validation reads the next score of ``SCORES``."""

    def __init__(self) -> None:
        self.epoch = 0

    def batches(self, generator: torch.Generator) -> list[np.ndarray]:
        return [np.arange(2), np.arange(2, 4)]

    def loss(self, call, indices, generator):
        return call("forward", torch.ones(len(indices), 1)).square().mean(), {"loss": 0.0}

    def validate(self, model, accelerator):
        self.epoch += 1
        return {"score": SCORES[self.epoch - 1]}


def _train(run_dir: Path, patience: int, select_best: bool = True) -> int:
    """Fit the scripted run with ``patience`` into ``run_dir``; its best epoch."""
    model = torch.nn.Linear(1, 1)
    config = engine(epochs=len(SCORES), lr=0.1, patience=patience, select_best=select_best)
    params = [{"params": list(model.parameters())}]
    result = fit(model, params, _Scripted(), config, accelerator_for("cpu"), run_dir, "key", progress=False)
    return result.best_epoch


def test_a_runs_best_epoch_and_its_longest_wait_before_it() -> None:
    assert stopping(SCORES) == {"best_epoch": 6, "epochs_run": 12, "longest_wait": 3}
    assert stopping([0.2, 0.2, 0.3]) == {"best_epoch": 3, "epochs_run": 3, "longest_wait": 1}  # a tie waits
    assert stopping([0.5]) == {"best_epoch": 1, "epochs_run": 1, "longest_wait": 0}


def test_the_engines_checkpoints_give_each_chapters_price_and_a_patience_above_the_wait_keeps_the_best(
    tmp_path: Path,
) -> None:
    artifacts = tmp_path / "artifacts"
    assert _train(artifacts / "multitask" / "runs" / "patient", patience=6) == 6  # runs to epoch 12
    assert _train(artifacts / "multitask" / "runs" / "tight", patience=4) == 6  # wait + 1: stops at 10
    assert _train(tmp_path / "too_tight", patience=3) == 2  # at the wait itself: stops at 5, best 2
    _train(artifacts / "multitask" / "runs" / "patient" / "refit", 1, select_best=False)  # no selection
    histories = run_histories(artifacts / "multitask")
    assert list(histories) == ["runs/patient", "runs/tight"]
    assert histories["runs/patient"] == SCORES and histories["runs/tight"] == SCORES[:10]
    record = early_stopping(artifacts)
    assert record == {
        "03": {"runs": 2, "epochs_run": 22, "after_best": 10, "longest_wait": 3, "saved_at_tightest": 2}
    }
    page = "\n".join(markdown({"early_stopping": record}))
    assert "| 03 | 2 | 22 | 10 | 3 | 2 |" in page
    assert markdown({"early_stopping": {}}) == [] and early_stopping(tmp_path / "empty") == {}


def test_the_results_summary_shows_the_early_stopping_table() -> None:
    record = {
        "dataset": "ml-100k", "device": "cpu", "date": "2026-12-05", "command": "make bench",
        "machine": {"cpu_count": 2, "memory_mb": 1, "gpu": None, "torch": "2"},
        "notebooks": {"02_transformer_pretraining": {"wall_s": 1.0}}, "total_wall_s": 1.0,
        "peak_kernel_rss_mb": 1.0,
        "early_stopping": {"02": {"runs": 2, "epochs_run": 165, "after_best": 30, "longest_wait": 12,
                                  "saved_at_tightest": 4}},
    }  # fmt: skip
    assert "| 02 | 2 | 165 | 30 | 12 | 4 |" in summary(record, "cpu-ml-100k")
