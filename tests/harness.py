"""The papermill test harness: run one notebook (or all of them in order) into a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mtrec_helpers.core.paths import notebooks_dir, project_root
from mtrec_helpers.core.results import read_metrics
from mtrec_helpers.course.presets import PRESETS
from mtrec_helpers.course.runner import notebook_number_of, numbered_notebooks, parameters_for, run_notebook


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


TINY = PRESETS["tiny"]
"""The tiny preset (HEAD_EPOCHS=0 in 03: the warm-up is tested in test_multitask.py)."""


def make_run(folder: Path, preset: str = "tiny", **variables: str) -> subprocess.CompletedProcess[str]:
    """`make run PRESET=<preset>` from the repository root into ``folder/artifacts`` and ``folder/runs``,
    as a user types it (the environment this interpreter runs in; nothing of an outer `make`)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    environment["VIRTUAL_ENV"] = sys.prefix
    command = ["make", "-C", str(project_root()), "run", f"PRESET={preset}", "DEVICE=cpu",
               f"ARTIFACTS_DIR={folder / 'artifacts'}", f"RUNS_DIR={folder / 'runs'}",
               *(f"{k}={v}" for k, v in variables.items())]  # fmt: skip
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done
