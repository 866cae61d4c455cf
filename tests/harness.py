"""The papermill test harness: run one notebook (or all of them in order) into a temporary folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mtrec_helpers.notebooks import notebook_number_of, numbered_notebooks, parameters_for, run_notebook
from mtrec_helpers.paths import notebooks_dir
from mtrec_helpers.results import read_metrics


def run_stage(notebook: str, stage: str, tmp_path: Path, **parameters: Any) -> dict[str, Any]:
    """Run ``notebook`` with its artifacts under ``tmp_path`` (plus ``parameters``); return metrics.json.

    Parameters the notebook does not declare are refused before anything runs; the kernel is
    ``$MTREC_KERNEL`` (default ``mtrec``), named explicitly.
    """
    artifacts = tmp_path / "artifacts"
    run_notebook(
        notebooks_dir() / notebook,
        tmp_path / "runs" / notebook,
        {"ARTIFACTS_DIR": str(artifacts), **parameters},
    )
    return read_metrics(artifacts, stage)


def run_all(folder: Path, overrides: dict[str, dict[str, Any]], dataset: str = "ml-100k") -> dict[str, float]:
    """Every numbered notebook in order from an empty ``folder/artifacts``, as `make run` does, with
    per-notebook overrides (keyed by the chapter number, e.g. "02", "02b"); returns seconds per notebook."""
    common = {"DATASET": dataset, "ARTIFACTS_DIR": str(folder / "artifacts"), "DEVICE": "cpu"}
    seconds = {}
    for notebook in numbered_notebooks():
        start = time.perf_counter()
        number = notebook_number_of(notebook)
        parameters = parameters_for(notebook, common, overrides.get(number, {}))
        run_notebook(notebook, folder / "runs" / notebook.name, parameters)
        seconds[number] = time.perf_counter() - start
    return seconds


TINY = {
    "02": {"EPOCHS": 2, "HIDDEN": 16, "MAX_LEN": 20, "LR": 5e-3, "KNN_NEIGHBOURS": [20], "EASE_L2": [200],
           "N_BOOT": 200},
    "02b": {"EPOCHS": 1, "N_BOOT": 200},
    "03": {"EPOCHS": 1, "HEAD_EPOCHS": 0, "REFIT_EPOCHS": 1, "AUX_LAMBDAS": [0.3], "LR": 1e-3, "LORA_RANK": 4,
           "N_BOOT": 200},
    "04": {"ITERATIONS": 5, "SLATEQ_ITERATIONS": 3, "BATCH_USERS": 64, "EVAL_REPEATS": 1, "LOG_REPEATS": 1,
           "OFFPOLICY_EPOCHS": 2, "N_BOOT": 200},
    "05": {"K_RANGE": [3, 4], "STUDENT_HIDDEN": [8], "ABLATION_HIDDEN": 8, "EPOCHS": 1,
           "THROUGHPUT_REPEATS": 1, "N_BOOT": 200},
    "06": {"N_BOOT": 200},
}  # fmt: skip
"""Tiny settings per notebook (HEAD_EPOCHS=0: the warm-up is tested in test_multitask.py)."""
